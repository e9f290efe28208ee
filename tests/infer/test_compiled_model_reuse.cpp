// A compiled model across input shapes and threads: a shape seen before runs without
// recompiling or repacking weights, its activations come from the storage pool that
// training uses and go back there, and two models used from two threads at once give
// exactly what they give alone.
#include <gtest/gtest.h>

#include <thread>

#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/models/zoo.h"
#include "resnet/tensor/storage_pool.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace rt = resnet::testing;
namespace {

nn::ModulePtr eval_model(const std::string& name, int64_t in_channels, uint64_t seed) {
  nn::ModulePtr m = rt::deterministic_model(name, in_channels, seed);
  m->eval();
  return m;
}

float relative_error(const Tensor& got, const Tensor& want) {
  return max_abs_diff(got, want) / std::max(max_abs(want), 1e-30f);
}

TEST(CompiledModelShapes, AlternatingBatchSizesReuseStepsAndPackedWeights) {
  nn::ModulePtr m = eval_model("resnet20", 1, 5);
  CompiledModel compiled(lower_module(*m));
  nn::GradEnabledGuard no_grad(false);
  const Tensor x4 = rt::deterministic_tensor(1, "input", {4, 1, 28, 28});
  const Tensor x3 = rt::deterministic_tensor(2, "input", {3, 1, 28, 28});
  const Tensor first = compiled.run(x4);
  const int64_t packs = compiled.memory_stats().weight_packs;
  EXPECT_GT(packs, 0);
  const Tensor shorter = compiled.run(x3);
  EXPECT_LT(relative_error(shorter, m->forward(x3)), 1e-4f);
  const Tensor again = compiled.run(x4);
  EXPECT_EQ(max_abs_diff(again, first), 0.f);
  // f32 blocked convolutions read one weight layout whatever the batch, so the shorter
  // batch added primitives but packed nothing.
  EXPECT_EQ(compiled.memory_stats().weight_packs, packs) << compiled.describe();
  // Another spatial size works too, and answers as a fresh compilation does.
  const Tensor x_odd = rt::deterministic_tensor(3, "input", {2, 1, 17, 23});
  EXPECT_EQ(max_abs_diff(compiled.run(x_odd), CompiledModel(lower_module(*m)).run(x_odd)), 0.f);
}

TEST(CompiledModelMemory, ActivationsComeFromTheStoragePoolAndGoBack) {
#ifdef RESNET_SANITIZE
  GTEST_SKIP() << "the sanitizer build allocates every tensor with malloc";
#endif
  nn::ModulePtr m = eval_model("resnet20", 1, 5);
  CompiledModel compiled(lower_module(*m));
  // Batch 64: the first layers' activations (64 x 16 x 28 x 28 f32, 3 MiB) are pooled.
  const Tensor x = rt::deterministic_tensor(1, "input", {64, 1, 28, 28});
  // The first run compiles: it keeps the folded weights (tensors too) from then on.
  const Tensor first = compiled.run(x);
  const size_t live = detail::pooled_storage_live_bytes();
  const size_t mapped = live + detail::pooled_storage_cached_bytes();
  const CompiledModel::MemoryStats mem = compiled.memory_stats();
  EXPECT_GT(mem.buffer_bytes, size_t{3} << 20);
  EXPECT_LT(mem.buffer_bytes * 3 / 2, mem.activation_bytes) << compiled.describe();
  // Later runs take their activations from what the first one gave back, and give them
  // back in turn: nothing stays live and the pool maps nothing more.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(max_abs_diff(compiled.run(x), first), 0.f);
    EXPECT_EQ(detail::pooled_storage_live_bytes(), live);
  }
  EXPECT_EQ(detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes(), mapped);
  // During a run, the pool holds the activations: each observed value (a plain copy,
  // itself pooled) beside the stored one of 64 x 16 x 28 x 28 f32 at least.
  size_t peak = 0;
  compiled.set_observer([&](const std::string&, const Tensor&) {
    peak = std::max(peak, detail::pooled_storage_live_bytes());
  });
  compiled.run(x);
  EXPECT_GE(peak, live + 2 * size_t{64 * 16 * 28 * 28 * 4});
}

TEST(CompiledModelThreads, TwoModelsOnTwoThreadsAnswerAsAlone) {
  nn::ModulePtr a = eval_model("resnet20", 3, 7);
  nn::ModulePtr b = eval_model("resnet18", 3, 8);
  const Tensor xa = rt::deterministic_tensor(4, "input", {2, 3, 32, 32});
  const Tensor xb = rt::deterministic_tensor(5, "input", {3, 3, 40, 36});
  const Tensor want_a = CompiledModel(lower_module(*a)).run(xa);
  const Tensor want_b = CompiledModel(lower_module(*b)).run(xb);
  constexpr int kRuns = 6;
  float worst_a = 0.f, worst_b = 0.f;
  // Each thread compiles and runs its own model; the oneDNN caches and the plan caches
  // in between are shared.
  std::thread ta([&] {
    CompiledModel ma(lower_module(*a));
    for (int i = 0; i < kRuns; ++i) worst_a = std::max(worst_a, max_abs_diff(ma.run(xa), want_a));
  });
  std::thread tb([&] {
    CompiledModel mb(lower_module(*b));
    for (int i = 0; i < kRuns; ++i) worst_b = std::max(worst_b, max_abs_diff(mb.run(xb), want_b));
  });
  ta.join();
  tb.join();
  EXPECT_EQ(worst_a, 0.f);
  EXPECT_EQ(worst_b, 0.f);
}

}  // namespace
}  // namespace resnet::infer
