#include "step_log.h"

#include <cmath>
#include <utility>

namespace resnet::train {

void record_grad_norms(nn::Module& model, int64_t step, std::ostream& out) {
  int64_t depth = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (p->value.rank() != 4) continue;
    double sq = 0.0;
    for (float g : std::as_const(p->grad).values()) sq += static_cast<double>(g) * g;
    out << step << ',' << name << ',' << depth++ << ',' << std::sqrt(sq) << '\n';
  }
}

StepLog::StepLog(const std::string& path, bool resume, int64_t every)
    : out_(path, resume ? std::ios::app : std::ios::trunc), every_(every) {
  if (!resume) out_ << "step,epoch,train_loss,train_acc\n";
}

void StepLog::add(int64_t step, int64_t epoch, double loss, int64_t correct, int64_t images) {
  loss_ += loss * static_cast<double>(images);
  correct_ += correct;
  seen_ += images;
  if (step % every_ != 0) return;
  out_ << step << ',' << epoch << ',' << loss_ / static_cast<double>(seen_) << ','
       << static_cast<double>(correct_) / static_cast<double>(seen_) << '\n';
  out_.flush();
  loss_ = 0.0;
  correct_ = seen_ = 0;
}

}  // namespace resnet::train
