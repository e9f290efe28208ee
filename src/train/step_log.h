#pragma once
// What a training run logs between epochs: steps.csv (the mean training loss and accuracy
// of every window of steps) and grad_norms.csv (every conv weight's gradient norm).

#include <cstdint>
#include <fstream>
#include <string>

#include "resnet/nn/module.h"

namespace resnet::train {

// Per conv weight: name and depth (order of appearance, which is forward order).
void record_grad_norms(nn::Module& model, int64_t step, std::ostream& out);

// steps.csv: the mean loss and accuracy of every window of `every` steps.
class StepLog {
 public:
  StepLog(const std::string& path, bool resume, int64_t every);
  void add(int64_t step, int64_t epoch, double loss, int64_t correct, int64_t images);

 private:
  std::ofstream out_;
  int64_t every_;
  double loss_ = 0.0;
  int64_t correct_ = 0, seen_ = 0;
};

}  // namespace resnet::train
