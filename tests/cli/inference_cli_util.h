#pragma once
// What the inference commands' end-to-end tests share: bench's one-line JSON, the model's
// multiply-adds, a softmax, and the numerics contract's bound.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "resnet/infer/graph.h"
#include "resnet/infer/lower_module.h"
#include "resnet/models/zoo.h"

namespace resnet::testing {

inline constexpr float kTolerance = 1e-4f;  // fraction of the reference's max |x| (contract)

// The command's stdout as one JSON object on one line.
inline nlohmann::json one_json_line(const CliResult& r) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one JSON line: " << r.out;
  return nlohmann::json::parse(r.out);
}

// Multiply-adds of one image through `name` at channels x size x size.
inline double macs_per_image(const std::string& name, int64_t channels, int64_t size) {
  models::ModelOptions o;
  o.in_channels = channels;
  nn::ModulePtr m = models::build(name, o);
  m->eval();
  infer::Graph g = infer::lower_module(*m);
  g.infer_shapes({1, channels, size, size});
  return static_cast<double>(infer::count_macs(g));
}

inline std::vector<double> softmax(const float* logits, int64_t n) {
  const double top = *std::max_element(logits, logits + n);
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += p[j] = std::exp(static_cast<double>(logits[j]) - top);
  for (double& v : p) v /= sum;
  return p;
}

}  // namespace resnet::testing
