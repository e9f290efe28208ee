#include "resnet/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "resnet/core/error.h"

namespace resnet::train {
namespace {

void check_step(const char* who, int64_t step) {
  RESNET_CHECK(step >= 0, who << ": expected a step >= 0, got " << step);
}

void check_lr(const char* who, const char* what, double lr) {
  RESNET_CHECK(std::isfinite(lr) && lr >= 0.0,
               who << ": expected a finite " << what << " >= 0, got " << lr);
}

class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(double lr) : lr_(lr) {}
  double lr_at(int64_t step) const override {
    check_step("constant lr", step);
    return lr_;
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "constant(lr=" << lr_ << ")";
    return s.str();
  }

 private:
  double lr_;
};

class MultiStepLr : public LrSchedule {
 public:
  MultiStepLr(double base_lr, std::vector<int64_t> milestones, double gamma)
      : base_lr_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
    std::sort(milestones_.begin(), milestones_.end());
  }
  double lr_at(int64_t step) const override {
    check_step("multistep lr", step);
    // bisect_right: the milestones <= step.
    const auto passed =
        std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
    return base_lr_ * std::pow(gamma_, static_cast<double>(passed));
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "multistep(lr=" << base_lr_ << ", milestones=[";
    for (size_t i = 0; i < milestones_.size(); ++i) s << (i ? ", " : "") << milestones_[i];
    s << "], gamma=" << gamma_ << ")";
    return s.str();
  }

 private:
  double base_lr_;
  std::vector<int64_t> milestones_;
  double gamma_;
};

class CosineLr : public LrSchedule {
 public:
  CosineLr(double base_lr, int64_t total_steps, double eta_min)
      : base_lr_(base_lr), total_steps_(total_steps), eta_min_(eta_min) {}
  double lr_at(int64_t step) const override {
    check_step("cosine lr", step);
    // PyTorch's closed form, term for term.
    return eta_min_ + (base_lr_ - eta_min_) *
                          (1.0 + std::cos(std::numbers::pi * double(step) / double(total_steps_))) /
                          2.0;
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "cosine(lr=" << base_lr_ << ", total_steps=" << total_steps_ << ", eta_min=" << eta_min_
      << ")";
    return s.str();
  }

 private:
  double base_lr_;
  int64_t total_steps_;
  double eta_min_;
};

class OneCycleLr : public LrSchedule {
 public:
  OneCycleLr(double max_lr, int64_t total_steps, OneCycleOptions o)
      : max_lr_(max_lr), total_steps_(total_steps), options_(o) {
    initial_lr_ = max_lr / o.div_factor;
    min_lr_ = initial_lr_ / o.final_div_factor;
    phase1_end_ = o.pct_start * double(total_steps) - 1.0;
    phase2_end_ = double(total_steps - 1);
  }
  double lr_at(int64_t step) const override {
    check_step("onecycle lr", step);
    RESNET_CHECK(step <= total_steps_,
                 "onecycle lr: step " << step << " is past total_steps " << total_steps_);
    const double t = double(step);
    if (t <= phase1_end_) return anneal(initial_lr_, max_lr_, t, 0.0, phase1_end_);
    return anneal(max_lr_, min_lr_, t, phase1_end_, phase2_end_);
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "onecycle(max_lr=" << max_lr_ << ", total_steps=" << total_steps_
      << ", pct_start=" << options_.pct_start << ", div_factor=" << options_.div_factor
      << ", final_div_factor=" << options_.final_div_factor << ")";
    return s.str();
  }

 private:
  // PyTorch's _annealing_cos over the phase [start_step, end_step], term for term.
  static double anneal(double start, double end, double t, double start_step, double end_step) {
    if (end_step == start_step) return end;  // PyTorch divides by zero here
    const double pct = (t - start_step) / (end_step - start_step);
    const double cos_out = std::cos(std::numbers::pi * pct) + 1.0;
    return end + (start - end) / 2.0 * cos_out;
  }

  double max_lr_;
  int64_t total_steps_;
  OneCycleOptions options_;
  double initial_lr_, min_lr_, phase1_end_, phase2_end_;
};

class WarmupLr : public LrSchedule {
 public:
  WarmupLr(std::unique_ptr<LrSchedule> main, int64_t warmup_steps, double start_factor)
      : main_(std::move(main)), warmup_steps_(warmup_steps), start_factor_(start_factor) {
    target_ = main_->lr_at(0);
  }
  double lr_at(int64_t step) const override {
    check_step("warmup lr", step);
    if (step >= warmup_steps_) return main_->lr_at(step - warmup_steps_);
    // LinearLR's closed form with end_factor 1.
    return target_ * (start_factor_ + (1.0 - start_factor_) * double(step) / double(warmup_steps_));
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "warmup(steps=" << warmup_steps_ << ", start_factor=" << start_factor_ << ") then "
      << main_->describe();
    return s.str();
  }

 private:
  std::unique_ptr<LrSchedule> main_;
  int64_t warmup_steps_;
  double start_factor_;
  double target_;
};

}  // namespace

std::unique_ptr<LrSchedule> make_constant_lr(double lr) {
  check_lr("constant lr", "lr", lr);
  return std::make_unique<ConstantLr>(lr);
}

std::unique_ptr<LrSchedule> make_multistep_lr(double base_lr, std::vector<int64_t> milestones,
                                              double gamma) {
  check_lr("multistep lr", "lr", base_lr);
  RESNET_CHECK(std::isfinite(gamma) && gamma > 0.0,
               "multistep lr: expected a finite gamma > 0, got " << gamma);
  for (int64_t m : milestones) {
    RESNET_CHECK(m >= 0, "multistep lr: expected milestones >= 0, got " << m);
  }
  return std::make_unique<MultiStepLr>(base_lr, std::move(milestones), gamma);
}

std::unique_ptr<LrSchedule> make_cosine_lr(double base_lr, int64_t total_steps, double eta_min) {
  check_lr("cosine lr", "lr", base_lr);
  check_lr("cosine lr", "eta_min", eta_min);
  RESNET_CHECK(total_steps > 0, "cosine lr: expected total_steps > 0, got " << total_steps);
  return std::make_unique<CosineLr>(base_lr, total_steps, eta_min);
}

std::unique_ptr<LrSchedule> make_onecycle_lr(double max_lr, int64_t total_steps,
                                             OneCycleOptions options) {
  check_lr("onecycle lr", "max_lr", max_lr);
  RESNET_CHECK(total_steps > 0, "onecycle lr: expected total_steps > 0, got " << total_steps);
  RESNET_CHECK(options.pct_start >= 0.0 && options.pct_start <= 1.0,
               "onecycle lr: expected pct_start in [0, 1], got " << options.pct_start);
  RESNET_CHECK(std::isfinite(options.div_factor) && options.div_factor > 0.0,
               "onecycle lr: expected a finite div_factor > 0, got " << options.div_factor);
  RESNET_CHECK(
      std::isfinite(options.final_div_factor) && options.final_div_factor > 0.0,
      "onecycle lr: expected a finite final_div_factor > 0, got " << options.final_div_factor);
  return std::make_unique<OneCycleLr>(max_lr, total_steps, options);
}

std::unique_ptr<LrSchedule> make_warmup_lr(std::unique_ptr<LrSchedule> main, int64_t warmup_steps,
                                           double start_factor) {
  RESNET_CHECK(main != nullptr, "warmup lr: expected a main schedule, got null");
  RESNET_CHECK(warmup_steps >= 0, "warmup lr: expected warmup steps >= 0, got " << warmup_steps);
  RESNET_CHECK(start_factor > 0.0 && start_factor <= 1.0,
               "warmup lr: expected start_factor in (0, 1], got " << start_factor);
  if (warmup_steps == 0) return main;
  return std::make_unique<WarmupLr>(std::move(main), warmup_steps, start_factor);
}

}  // namespace resnet::train
