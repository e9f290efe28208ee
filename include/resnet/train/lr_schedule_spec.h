#pragma once
// The command line's learning-rate schedule specs (`resnet train --lr-schedule SPEC
// --warmup N`), parsed into an LrSchedule (lr_schedule.h).
//
// Grammar (no spaces; numbers in C/JSON notation, integers in decimal):
//   spec       := "constant"
//               | "multistep:" milestones [":" gamma]      gamma default 0.1
//               | "cosine" [":" eta_min]                    eta_min default 0
//               | "onecycle" [":" pct_start [":" div_factor [":" final_div_factor]]]
//                                                           defaults 0.3, 25, 1e4
//   milestones := int ("," int)*                            strictly increasing, >= 0
// Examples: "constant", "multistep:30,60:0.1", "cosine", "cosine:1e-5", "onecycle:0.25".
//
// base_lr is the optimizer's lr (one-cycle's max_lr). total_steps is the length of the run
// (needed by cosine and onecycle, > 0; ignored otherwise). With warmup_steps = W > 0 the
// schedule starts with a linear warm-up from warmup_start_factor * lr (make_warmup_lr) and
// the spec's schedule follows, its steps counted from W, as PyTorch's SequentialLR does:
// cosine and onecycle then span total_steps - W steps (which must be > 0) so the run ends
// where they end, and multistep milestones count from the end of the warm-up.
// Errors name the spec and what was wrong, listing the known kinds for an unknown one.

#include <cstdint>
#include <memory>
#include <string>

#include "resnet/train/lr_schedule.h"

namespace resnet::train {

std::unique_ptr<LrSchedule> parse_lr_schedule(const std::string& spec, double base_lr,
                                              int64_t total_steps, int64_t warmup_steps = 0,
                                              double warmup_start_factor = 1.0 / 3);

}  // namespace resnet::train
