// The facade (resnet/api/): Model::load from a zoo name, a checkpoint and an ONNX file;
// compile in f32 against the module tree; int8 after calibrate(); save and export round
// trips; top_k; the runtime calls. Small models at small sizes.

#include <gtest/gtest.h>

#include <omp.h>

#include <string>
#include <thread>

#include "io/io_test_util.h"
#include "resnet/api/model.h"
#include "resnet/api/prediction.h"
#include "resnet/api/runtime.h"
#include "resnet/api/training.h"
#include "resnet/api/version.h"
#include "resnet/backend/eltwise.h"
#include "resnet/backend/shortcut_pad.h"
#include "resnet/io/safetensors.h"
#include "resnet/nn/init.h"
#include "support/deterministic_weights.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::TempDir;

Tensor random_batch(Shape shape, uint64_t seed) {
  Tensor x(std::move(shape));
  nn::init::manual_seed(seed);
  nn::init::uniform_(x, -1.f, 1.f);
  return x;
}

Tensor module_forward(const Model& m, const Tensor& x) {
  nn::GradEnabledGuard no_grad(false);
  return m.module()->forward(x);
}

TEST(ApiModel, ZooModelCompiledMatchesModuleTree) {
  Model m = Model::load("resnet20", {.model = {.num_classes = 7, .in_channels = 1}});
  testing::fill_deterministic(*m.module(), 3);
  EXPECT_EQ(m.name(), "resnet20");
  EXPECT_EQ(m.in_channels(), 1);
  EXPECT_EQ(m.num_classes(), 7);
  EXPECT_TRUE(m.class_names().empty());
  EXPECT_FALSE(m.preprocessing().has_value());
  const Tensor x = random_batch({3, 1, 13, 11}, 5);
  infer::CompiledModel net = m.compile(Precision::f32);
  testing::expect_close(net.run(x), module_forward(m, x), 1e-4, "compiled f32 vs module");
}

TEST(ApiModel, Int8NeedsCalibrationThenStaysClose) {
  Model m = Model::load("resnet20");
  testing::fill_deterministic(*m.module(), 4);
  EXPECT_IO_ERROR(m.compile(Precision::int8), "resnet20", "calibrat");
  EXPECT_IO_ERROR(m.calibrate({}), "resnet20", "batch");
  const Tensor x = random_batch({4, 3, 16, 16}, 6);
  m.calibrate({x.reshape({4, 3, 16, 16}), random_batch({2, 3, 16, 16}, 7)});
  ASSERT_NE(m.calibration(), nullptr);
  EXPECT_EQ(m.calibration()->images, 6);
  infer::CompiledModel int8 = m.compile(Precision::int8);
  // The documented int8 tolerance (README, Numerics): 4% of the f32 output's magnitude.
  testing::expect_close(int8.run(x), module_forward(m, x), 0.04, "int8 vs f32");
}

TEST(ApiModel, SaveLoadsBackAsCheckpointWithCalibration) {
  TempDir dir;
  Model m = Model::load("resnet20", {.model = {.num_classes = 5, .cifar_shortcut = 'B'}});
  testing::fill_deterministic(*m.module(), 8);
  const Tensor x = random_batch({2, 3, 8, 8}, 9);
  m.calibrate({x});
  m.save(dir.file("m.safetensors"));
  const auto metadata = io::read_safetensors(dir.file("m.safetensors")).metadata;
  EXPECT_EQ(metadata.at("model"), "resnet20");
  EXPECT_EQ(metadata.at("shortcut"), "B");
  EXPECT_TRUE(metadata.count("int8_calibration"));

  const Model back = Model::load(dir.file("m.safetensors"));
  EXPECT_EQ(back.num_classes(), 5);
  ASSERT_NE(back.calibration(), nullptr);
  EXPECT_EQ(back.calibration()->max_abs, m.calibration()->max_abs);
  testing::expect_close(module_forward(back, x), module_forward(m, x), 0.0, "reloaded");
}

TEST(ApiModel, WeightsLoadStrictlyIntoZooModel) {
  TempDir dir;
  Model a = Model::load("resnet20");
  testing::fill_deterministic(*a.module(), 10);
  a.save(dir.file("a.safetensors"));
  const Model b = Model::load("resnet20", {.weights = dir.file("a.safetensors")});
  const Tensor x = random_batch({1, 3, 8, 8}, 11);
  testing::expect_close(module_forward(b, x), module_forward(a, x), 0.0, "weights");
  EXPECT_IO_ERROR(Model::load("resnet32", {.weights = dir.file("a.safetensors")}), "a.safetensors",
                  "missing");
}

TEST(ApiModel, OnnxExportLoadsAndRunsInAllPrecisions) {
  TempDir dir;
  Model m = Model::load("resnet20");
  testing::fill_deterministic(*m.module(), 12);
  m.export_onnx(dir.file("m.onnx"));
  Model onnx = Model::load(dir.file("m.onnx"));
  EXPECT_EQ(onnx.module(), nullptr);
  EXPECT_EQ(onnx.in_channels(), 3);
  EXPECT_EQ(onnx.num_classes(), 10);
  const Tensor x = random_batch({2, 3, 12, 12}, 13);
  const Tensor expected = module_forward(m, x);
  testing::expect_close(onnx.compile().run(x), expected, 1e-4, "onnx f32");
  testing::expect_close(onnx.compile(Precision::bf16).run(x), expected, 0.02, "onnx bf16");
  onnx.calibrate({x});
  testing::expect_close(onnx.compile(Precision::int8).run(x), expected, 0.04, "onnx int8");
  EXPECT_IO_ERROR(onnx.save(dir.file("x.safetensors")), "x.safetensors", "ONNX");
  EXPECT_IO_ERROR(Model::load(dir.file("m.onnx"), {.weights = "w.safetensors"}), "--weights");
}

TEST(ApiModel, GraphShapesAndUnknownNames) {
  const Model m = Model::load("resnet18");
  const infer::Graph g = m.graph(64);
  EXPECT_EQ(g.values[g.output].shape, (Shape{1, 1000}));
  EXPECT_TRUE(m.graph().values[m.graph().output].shape.empty());  // symbolic: not inferred
  EXPECT_IO_ERROR(Model::load("resnet21"), "resnet21");
}

TEST(ApiPrediction, TopKOrdersByProbabilityTiesToLowerIndex) {
  const Tensor logits = Tensor::from_vector({2, 4}, {0.f, 2.f, 2.f, 1.f, 5.f, 0.f, 0.f, 0.f});
  const auto rows = top_k(logits, 3);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].size(), 3u);
  EXPECT_EQ(rows[0][0].index, 1);
  EXPECT_EQ(rows[0][1].index, 2);
  EXPECT_EQ(rows[0][2].index, 3);
  EXPECT_NEAR(rows[0][0].probability, std::exp(2.0) / (1 + 2 * std::exp(2.0) + std::exp(1.0)),
              1e-12);
  EXPECT_EQ(rows[1][0].index, 0);
  EXPECT_EQ(top_k(logits, 10)[0].size(), 4u);  // capped at the class count
  EXPECT_IO_ERROR(top_k(Tensor({4}), 1), "top_k", "[4]");
  EXPECT_IO_ERROR(top_classes({0.5, 0.5}, 3), "top_classes", "3");
}

TEST(ApiRuntime, ThreadsAllocatorAndVersion) {
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(before);
  EXPECT_IO_ERROR(set_num_threads(0), "set_num_threads", "0");
  configure_allocator();
  configure_allocator();
  EXPECT_EQ(std::string(version()).find('.') != std::string::npos, true) << version();
}

// OpenMP keeps its thread count per thread: a count set on one thread must still hold on
// a thread that computes later, in oneDNN's kernels (a oneDNN op) and in the library's
// own loops (the zero-padding shortcut), each seen on a fresh thread.
TEST(ApiRuntime, ThreadCountHoldsOnOtherThreads) {
  const int before = num_threads();
  const int wanted = before == 1 ? 2 : 1;  // differs from the current count
  set_num_threads(wanted);
  const auto count_after = [](auto compute) {
    int seen = 0;
    std::thread worker([&] {
      compute();
      seen = omp_get_max_threads();
    });
    worker.join();
    return seen;
  };
  const Tensor x = Tensor::full({1, 2, 3, 3}, -1.f);
  EXPECT_EQ(count_after([&] { backend::relu_forward(x); }), wanted) << "after a oneDNN op";
  EXPECT_EQ(count_after([&] { backend::subsample_pad_channels(x, 2, 2, 1, 1); }), wanted)
      << "after the library's own loop";
  int reported = 0;
  count_after([&] { reported = num_threads(); });
  EXPECT_EQ(reported, wanted) << "num_threads() on another thread";
  set_num_threads(before);
  EXPECT_EQ(count_after([&] { backend::relu_forward(x); }), before) << "after restoring";
}

}  // namespace
}  // namespace resnet
