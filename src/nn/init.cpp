#include "resnet/nn/init.h"

#include <cmath>
#include <mutex>
#include <random>

namespace resnet::nn::init {

namespace {
std::mt19937_64& generator() {
  static std::mt19937_64 g(0);
  return g;
}
// One generator for the process, as torch's default one: programs that build models on
// several threads at once (a server loading two models) must not race on its state. The
// numbers each thread draws then depend on the interleaving, as in PyTorch; seed and
// build on one thread for reproducible weights.
std::mutex& generator_mutex() {
  static std::mutex m;
  return m;
}
int64_t receptive_field(const Tensor& w) {
  int64_t r = 1;
  for (int i = 2; i < w.rank(); ++i) r *= w.dim(i);
  return r;
}
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generator_mutex());
  generator().seed(seed);
}

void uniform_(Tensor& t, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::lock_guard<std::mutex> lock(generator_mutex());
  for (float& v : t.values()) v = d(generator());
}

void normal_(Tensor& t, float mean, float std) {
  std::normal_distribution<float> d(mean, std);
  std::lock_guard<std::mutex> lock(generator_mutex());
  for (float& v : t.values()) v = d(generator());
}

int64_t fan_in(const Tensor& weight) {
  return weight.dim(1) * receptive_field(weight);
}
int64_t fan_out(const Tensor& weight) {
  return weight.dim(0) * receptive_field(weight);
}

void default_weight_(Tensor& weight) {
  float bound = 1.0f / std::sqrt(static_cast<float>(fan_in(weight)));
  uniform_(weight, -bound, bound);
}

void default_bias_(Tensor& bias, int64_t weight_fan_in) {
  float bound = weight_fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(weight_fan_in)) : 0.f;
  uniform_(bias, -bound, bound);
}

void kaiming_normal_fan_out_(Tensor& weight) {
  normal_(weight, 0.f, std::sqrt(2.0f / static_cast<float>(fan_out(weight))));
}

}  // namespace resnet::nn::init
