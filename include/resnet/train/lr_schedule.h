#pragma once
// Learning-rate schedules as pure functions of the step, with PyTorch 1.13's values.
//
// A step is whatever the caller advances the schedule by (an iteration or an epoch);
// lr_at(0) is the rate of the first optimizer step, lr_at(s) the rate after s calls of the
// PyTorch scheduler's step(). Milestones and totals count in the same unit. Every lr_at
// is a closed form, so it can be asked in any order (resuming a run needs no replay).
// A negative step is a resnet::Error. For the command line's spec strings, see
// lr_schedule_spec.h.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace resnet::train {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  // The learning rate at `step` >= 0.
  virtual double lr_at(int64_t step) const = 0;
  // A one-line description with every parameter: "cosine(lr=0.1, total_steps=50, eta_min=0)".
  virtual std::string describe() const = 0;
};

// lr at every step.
std::unique_ptr<LrSchedule> make_constant_lr(double lr);

// MultiStepLR: base_lr * gamma^(number of milestones <= step). Milestones >= 0, in any
// order, repeats counting twice (as PyTorch's Counter); gamma > 0.
std::unique_ptr<LrSchedule> make_multistep_lr(double base_lr, std::vector<int64_t> milestones,
                                              double gamma = 0.1);

// CosineAnnealingLR with T_max = total_steps > 0:
//   eta_min + (base_lr - eta_min) * (1 + cos(pi * step / total_steps)) / 2.
// Past total_steps it rises again, as PyTorch's does (a run should stop at total_steps).
std::unique_ptr<LrSchedule> make_cosine_lr(double base_lr, int64_t total_steps,
                                           double eta_min = 0.0);

struct OneCycleOptions {
  double pct_start = 0.3;         // fraction of the steps spent rising, in [0, 1]
  double div_factor = 25.0;       // initial lr = max_lr / div_factor (> 0)
  double final_div_factor = 1e4;  // final lr = initial lr / final_div_factor (> 0)
};

// OneCycleLR (anneal_strategy "cos", two phases) over total_steps > 0: with
// initial = max_lr / div_factor, min = initial / final_div_factor and
// cos_anneal(a, b, pct) = b + (a - b) / 2 * (1 + cos(pi * pct)),
//   phase 1, step <= pct_start * total_steps - 1 =: e1: cos_anneal(initial, max_lr, step / e1)
//   phase 2, up to e2 = total_steps - 1: cos_anneal(max_lr, min, (step - e1) / (e2 - e1)).
// A step past total_steps is an error (PyTorch raises too); step == total_steps is allowed.
// Where PyTorch divides by zero (a phase of length 0), the phase's end value is used.
// The momentum cycling of PyTorch's OneCycleLR (cycle_momentum) is not part of this.
std::unique_ptr<LrSchedule> make_onecycle_lr(double max_lr, int64_t total_steps,
                                             OneCycleOptions options = {});

// Linear warm-up handing over to `main`: PyTorch's SequentialLR([LinearLR(start_factor,
// total_iters=warmup_steps), main], milestones=[warmup_steps]). With target = main's
// lr_at(0) (the optimizer's lr for constant, multistep and cosine; max_lr / div_factor for
// one-cycle, as PyTorch's OneCycleLR overwrites the optimizer's initial lr):
//   step <  warmup_steps: target * (start_factor + (1 - start_factor) * step / warmup_steps)
//   step >= warmup_steps: main->lr_at(step - warmup_steps)   (main's steps count from there)
// warmup_steps >= 0 (0 returns main itself), start_factor in (0, 1].
std::unique_ptr<LrSchedule> make_warmup_lr(std::unique_ptr<LrSchedule> main, int64_t warmup_steps,
                                           double start_factor = 1.0 / 3);

}  // namespace resnet::train
