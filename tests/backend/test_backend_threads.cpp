// Backend kernels used from several threads (the threading contract of
// src/backend/plan_cache.h: one kernel instance per thread at a time, shared caches
// locked, primitives runnable on any thread): two training convolutions, and two whole
// networks training, each on its own thread at once, and a network moved to another
// thread, give exactly what they give alone. Each thread uses the caller's OpenMP thread count, as
// oneDNN's reductions (the weight gradient) depend on it.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>

#include "resnet/backend/conv2d.h"
#include "resnet/backend/eltwise.h"
#include "resnet/backend/threads.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "support/deterministic_weights.h"

namespace resnet::backend {
namespace rt = resnet::testing;
namespace {

struct ConvCase {
  Conv2dConfig cfg;
  Shape src_shape;
  Layout layout;
  uint64_t seed;
};

struct ConvResult {
  Tensor dst, diff_src, diff_weight, diff_bias;
};

// Forward, backward-data and backward-weights `repeats` times on one kernel; the last
// round's results, plain.
ConvResult run_conv(const ConvCase& c, int repeats) {
  const Conv2dConfig& g = c.cfg;
  Conv2dKernel kernel(g);
  const Tensor w = rt::deterministic_tensor(
      c.seed, "weight", {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w});
  const Tensor b = rt::deterministic_tensor(c.seed, "bias", {g.out_channels});
  const Tensor src = to_layout(rt::deterministic_tensor(c.seed, "src", c.src_shape), c.layout);
  ConvResult r;
  for (int i = 0; i < repeats; ++i) {
    r.dst = kernel.forward(src, w, b, c.layout);
    const Tensor diff_dst =
        to_layout(rt::deterministic_tensor(c.seed, "diff_dst", r.dst.shape()), c.layout);
    r.diff_src = to_layout(kernel.backward_data(diff_dst, w, c.src_shape, c.layout), Layout::plain);
    r.diff_weight = Tensor(w.shape());
    r.diff_bias = Tensor(b.shape());
    kernel.backward_weights(diff_dst, src, r.diff_weight, r.diff_bias);
  }
  r.dst = to_layout(r.dst, Layout::plain);
  return r;
}

void expect_same(const ConvResult& got, const ConvResult& want, const std::string& who) {
  EXPECT_EQ(max_abs_diff(got.dst, want.dst), 0.f) << who << " forward";
  EXPECT_EQ(max_abs_diff(got.diff_src, want.diff_src), 0.f) << who << " backward-data";
  EXPECT_EQ(max_abs_diff(got.diff_weight, want.diff_weight), 0.f) << who << " weight gradient";
  EXPECT_EQ(max_abs_diff(got.diff_bias, want.diff_bias), 0.f) << who << " bias gradient";
}

// Runs a() and b() on two threads at once, each with the caller's thread count.
template <typename A, typename B>
void on_two_threads(A&& a, B&& b) {
  const int threads = num_threads();
  std::thread ta([&] {
    set_num_threads(threads);
    a();
  });
  std::thread tb([&] {
    set_num_threads(threads);
    b();
  });
  ta.join();
  tb.join();
}

TEST(BackendThreads, TwoTrainingConvolutionsOnTwoThreadsAnswerAsAlone) {
  // A blocked 3x3 stride-1 convolution (Winograd where oneDNN has it) and a plain,
  // grouped, strided one with odd sizes (direct, oneDNN's own layouts).
  ConvCase a{{}, {2, 16, 14, 14}, Layout::blocked16, 1};
  a.cfg.in_channels = 16, a.cfg.out_channels = 32;
  a.cfg.kernel_h = a.cfg.kernel_w = 3, a.cfg.pad_h = a.cfg.pad_w = 1, a.cfg.bias = true;
  ConvCase b{{}, {3, 6, 17, 11}, Layout::plain, 2};
  b.cfg.in_channels = 6, b.cfg.out_channels = 9, b.cfg.groups = 3;
  b.cfg.kernel_h = 3, b.cfg.kernel_w = 2, b.cfg.stride_h = 2, b.cfg.stride_w = 1;
  b.cfg.pad_h = 1, b.cfg.dilation_w = 2, b.cfg.bias = true;
  const ConvResult want_a = run_conv(a, 1), want_b = run_conv(b, 1);
  ConvResult got_a, got_b;
  on_two_threads([&] { got_a = run_conv(a, 4); }, [&] { got_b = run_conv(b, 4); });
  expect_same(got_a, want_a, "blocked 16->32");
  expect_same(got_b, want_b, "grouped 6->9");
}

// One training step's loss gradient: every parameter's gradient, by name.
std::map<std::string, Tensor> gradients(nn::Module& m, const Tensor& x) {
  m.zero_grad();
  const Tensor y = m.forward(x);
  m.backward(rt::deterministic_tensor(9, "grad", y.shape()));
  std::map<std::string, Tensor> g;
  for (auto& [name, p] : m.named_parameters()) g[name] = p->grad.clone();
  return g;
}

nn::ModulePtr training_model(const std::string& name, int64_t in_channels, uint64_t seed) {
  nn::ModulePtr m = rt::deterministic_model(name, in_channels, seed);
  m->train(true);
  return m;
}

TEST(BackendThreads, TwoNetworksTrainingOnTwoThreadsAnswerAsAlone) {
  // ResNet-20 (option-A shortcuts, 1-channel stem) and ResNet-18 (projections, max pool):
  // every backend kernel of a training step, on two threads at once.
  nn::ModulePtr a = training_model("resnet20", 1, 3);
  nn::ModulePtr b = training_model("resnet18", 3, 4);
  const Tensor xa = rt::deterministic_tensor(5, "input", {4, 1, 28, 28});
  const Tensor xb = rt::deterministic_tensor(6, "input", {2, 3, 33, 35});
  const auto want_a = gradients(*a, xa), want_b = gradients(*b, xb);
  std::map<std::string, Tensor> got_a, got_b;
  on_two_threads(
      [&] {
        for (int i = 0; i < 2; ++i) got_a = gradients(*a, xa);
      },
      [&] {
        for (int i = 0; i < 2; ++i) got_b = gradients(*b, xb);
      });
  ASSERT_EQ(got_a.size(), want_a.size());
  ASSERT_EQ(got_b.size(), want_b.size());
  for (auto& [name, g] : want_a)
    EXPECT_EQ(max_abs_diff(got_a.at(name), g), 0.f) << "resnet20 " << name;
  for (auto& [name, g] : want_b)
    EXPECT_EQ(max_abs_diff(got_b.at(name), g), 0.f) << "resnet18 " << name;
}

TEST(BackendThreads, ANetworkBuiltOnOneThreadTrainsOnAnother) {
  // Primitives created on the main thread and run on another: oneDNN's own scratchpad
  // is per thread and sized at creation, so without ours this overran it and crashed.
  nn::ModulePtr a = training_model("resnet20", 1, 3);
  const Tensor xa = rt::deterministic_tensor(5, "input", {4, 1, 28, 28});
  const auto want = gradients(*a, xa);
  std::map<std::string, Tensor> got;
  const int threads = num_threads();
  std::thread t([&] {
    set_num_threads(threads);
    got = gradients(*a, xa);
  });
  t.join();
  for (auto& [name, g] : want) EXPECT_EQ(max_abs_diff(got.at(name), g), 0.f) << name;
}

}  // namespace
}  // namespace resnet::backend
