// ONNX export read back through protobuf: opset and header, one ONNX node per graph node
// with the right attributes, one float initializer per state_dict entry (same name, shape
// and bytes), declared input and output shapes, and the file written atomically.

#include <gtest/gtest.h>

#include <limits>

#include "io_test_util.h"
#include "onnx_test_util.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/onnx.h"
#include "resnet/models/zoo.h"

namespace resnet {
namespace {

using testing::TempDir;

struct Exported {
  nn::ModulePtr model;
  onnx::ModelProto proto;
};

// Builds `name`, lowers it, exports it (with H and W fixed when size > 0) and reads it back.
Exported export_model(const TempDir& dir, const std::string& name,
                      const models::ModelOptions& options = {}, int64_t size = 0) {
  Exported e;
  e.model = models::build(name, options);
  e.model->train(false);
  infer::Graph g = infer::lower_module(*e.model);
  if (size > 0) g.infer_shapes({1, models::expected_in_channels(name, options), size, size});
  const std::string path = dir.file("model.onnx");
  io::write_onnx(g, path);
  e.proto = testing::read_onnx_proto(path);
  return e;
}

void expect_header(const onnx::ModelProto& m) {
  EXPECT_EQ(m.ir_version(), 7);
  EXPECT_EQ(m.producer_name(), "resnet");
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 13);
  ASSERT_EQ(m.graph().input_size(), 1);
  EXPECT_EQ(m.graph().input(0).name(), "input");
  ASSERT_EQ(m.graph().output_size(), 1);
  EXPECT_EQ(m.graph().output(0).name(), "output");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
}

// The float initializers are the state_dict (order, names, shapes) and hold its values.
void expect_state_dict(const Exported& e) {
  EXPECT_EQ(testing::float_initializers(e.proto), testing::inference_state(*e.model));
  for (auto& [name, t] : e.model->state_dict()) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    const auto* init = testing::find_initializer(e.proto, name);
    ASSERT_NE(init, nullptr) << name;
    EXPECT_TRUE(testing::same_floats(*init, *t)) << name;
  }
}

TEST(OnnxExport, Resnet20ShortcutA) {
  TempDir dir;
  Exported e = export_model(dir, "resnet20");
  expect_header(e.proto);
  testing::expect_well_formed(e.proto);
  expect_state_dict(e);
  // 19 convs with BN; a ReLU after the stem and two per block; 9 adds; option A's
  // shortcut (every second pixel, zero channels) where stages 2 and 3 begin.
  std::map<std::string, int> want{{"Conv", 19},   {"BatchNormalization", 19},
                                  {"Relu", 19},   {"Add", 9},
                                  {"Slice", 2},   {"Pad", 2},
                                  {"Flatten", 1}, {"GlobalAveragePool", 1},
                                  {"Gemm", 1}};
  EXPECT_EQ(testing::op_counts(e.proto), want);
  EXPECT_EQ(testing::declared_dims(e.proto.graph().input(0)),
            (std::vector<std::string>{"N", "3", "H", "W"}));
  EXPECT_EQ(testing::declared_dims(e.proto.graph().output(0)),
            (std::vector<std::string>{"N", "10"}));

  const auto* slice = testing::find_node(e.proto, "layer2.0.downsample.subsample");
  ASSERT_NE(slice, nullptr);
  ASSERT_EQ(slice->input_size(), 5);
  EXPECT_EQ(slice->input(0), "layer1.2.relu");
  const int64_t end = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<int64_t>> operands{{0, 0}, {end, end}, {2, 3}, {2, 2}};
  for (int i = 0; i < 4; ++i) {
    const auto* t = testing::find_initializer(e.proto, slice->input(i + 1));
    ASSERT_NE(t, nullptr) << slice->input(i + 1);
    EXPECT_EQ(t->data_type(), onnx::TensorProto::INT64);
    EXPECT_EQ(testing::int64_values(*t), operands[i]) << slice->input(i + 1);
  }
  const auto* pad = testing::find_node(e.proto, "layer2.0.downsample.pad");
  ASSERT_NE(pad, nullptr);
  ASSERT_EQ(pad->input_size(), 2);
  EXPECT_EQ(pad->input(0), "layer2.0.downsample.subsample");
  const auto* pads = testing::find_initializer(e.proto, pad->input(1));
  ASSERT_NE(pads, nullptr);
  // 16 -> 32 channels: 8 zero channels before the old ones and 8 after.
  EXPECT_EQ(testing::int64_values(*pads), (std::vector<int64_t>{0, 8, 0, 0, 0, 8, 0, 0}));
  ASSERT_NE(testing::find_attr(*pad, "mode"), nullptr);
  EXPECT_EQ(testing::find_attr(*pad, "mode")->s(), "constant");
  const auto* add = testing::find_node(e.proto, "layer2.0.add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->input(0), "layer2.0.bn2");
  EXPECT_EQ(add->input(1), "layer2.0.downsample.pad");
}

TEST(OnnxExport, Resnet20ShortcutB) {
  TempDir dir;
  models::ModelOptions options;
  options.cifar_shortcut = 'B';
  options.in_channels = 1;
  Exported e = export_model(dir, "resnet20", options);
  expect_header(e.proto);
  testing::expect_well_formed(e.proto);
  expect_state_dict(e);
  std::map<std::string, int> want{
      {"Conv", 21},   {"BatchNormalization", 21}, {"Relu", 19}, {"Add", 9},
      {"Flatten", 1}, {"GlobalAveragePool", 1},   {"Gemm", 1}};
  EXPECT_EQ(testing::op_counts(e.proto), want);
  EXPECT_EQ(testing::declared_dims(e.proto.graph().input(0)),
            (std::vector<std::string>{"N", "1", "H", "W"}));
  const auto* proj = testing::find_node(e.proto, "layer3.0.downsample.0");
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->op_type(), "Conv");
  EXPECT_EQ(testing::attr_ints(*proj, "kernel_shape"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(testing::attr_ints(*proj, "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(testing::attr_ints(*proj, "pads"), (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(OnnxExport, Resnet18Attributes) {
  TempDir dir;
  Exported e = export_model(dir, "resnet18");
  expect_header(e.proto);
  testing::expect_well_formed(e.proto);
  expect_state_dict(e);
  std::map<std::string, int> want{
      {"Conv", 20},   {"BatchNormalization", 20}, {"Relu", 17},   {"Add", 8},
      {"MaxPool", 1}, {"GlobalAveragePool", 1},   {"Flatten", 1}, {"Gemm", 1}};
  EXPECT_EQ(testing::op_counts(e.proto), want);
  EXPECT_EQ(testing::declared_dims(e.proto.graph().output(0)),
            (std::vector<std::string>{"N", "1000"}));

  const auto* conv1 = testing::find_node(e.proto, "conv1");
  ASSERT_NE(conv1, nullptr);
  EXPECT_EQ(conv1->input(0), "input");
  EXPECT_EQ(conv1->input(1), "conv1.weight");
  EXPECT_EQ(conv1->input_size(), 2);  // no bias
  EXPECT_EQ(testing::attr_ints(*conv1, "kernel_shape"), (std::vector<int64_t>{7, 7}));
  EXPECT_EQ(testing::attr_ints(*conv1, "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(testing::attr_ints(*conv1, "pads"), (std::vector<int64_t>{3, 3, 3, 3}));
  EXPECT_EQ(testing::attr_ints(*conv1, "dilations"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(testing::attr_int(*conv1, "group"), 1);

  const auto* bn1 = testing::find_node(e.proto, "bn1");
  ASSERT_NE(bn1, nullptr);
  EXPECT_EQ(std::vector<std::string>(bn1->input().begin(), bn1->input().end()),
            (std::vector<std::string>{"conv1", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                      "bn1.running_var"}));
  ASSERT_NE(testing::find_attr(*bn1, "epsilon"), nullptr);
  EXPECT_FLOAT_EQ(testing::find_attr(*bn1, "epsilon")->f(), 1e-5f);

  const auto* pool = testing::find_node(e.proto, "maxpool");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(testing::attr_ints(*pool, "kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(testing::attr_ints(*pool, "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(testing::attr_ints(*pool, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(testing::attr_int(*pool, "ceil_mode"), 0);

  const auto* flatten = testing::find_node(e.proto, "flatten");
  ASSERT_NE(flatten, nullptr);
  EXPECT_EQ(testing::attr_int(*flatten, "axis"), 1);
  const auto* fc = testing::find_node(e.proto, "fc");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->op_type(), "Gemm");
  EXPECT_EQ(std::vector<std::string>(fc->input().begin(), fc->input().end()),
            (std::vector<std::string>{"flatten", "fc.weight", "fc.bias"}));
  EXPECT_EQ(testing::attr_int(*fc, "transB"), 1);
  EXPECT_EQ(fc->output(0), "output");
}

TEST(OnnxExport, ResnextGroups) {
  TempDir dir;
  Exported e = export_model(dir, "resnext50_32x4d");
  testing::expect_well_formed(e.proto);
  const auto* conv2 = testing::find_node(e.proto, "layer1.0.conv2");
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(testing::attr_int(*conv2, "group"), 32);
  EXPECT_EQ(testing::float_initializers(e.proto), testing::inference_state(*e.model));
}

TEST(OnnxExport, SeedBlock) {
  TempDir dir;
  Exported e = export_model(dir, "block:5,8,2");
  expect_header(e.proto);
  testing::expect_well_formed(e.proto);
  expect_state_dict(e);
  std::map<std::string, int> want{{"Conv", 3}, {"BatchNormalization", 3}, {"Relu", 2}, {"Add", 1}};
  EXPECT_EQ(testing::op_counts(e.proto), want);
  EXPECT_EQ(testing::declared_dims(e.proto.graph().input(0)),
            (std::vector<std::string>{"N", "5", "H", "W"}));
  // The output's spatial size depends on H and W; ONNX shape inference works it out.
  EXPECT_EQ(testing::declared_dims(e.proto.graph().output(0)),
            (std::vector<std::string>{"N", "8", "?", "?"}));
  const auto* shortcut = testing::find_node(e.proto, "shortcut.0");
  ASSERT_NE(shortcut, nullptr);
  EXPECT_EQ(shortcut->input(0), "input");
}

TEST(OnnxExport, FixedSizeDeclaresConcreteDims) {
  TempDir dir;
  Exported e = export_model(dir, "block:5,8,2", {}, 9);
  EXPECT_EQ(testing::declared_dims(e.proto.graph().input(0)),
            (std::vector<std::string>{"N", "5", "9", "9"}));
  EXPECT_EQ(testing::declared_dims(e.proto.graph().output(0)),
            (std::vector<std::string>{"N", "8", "5", "5"}));
  Exported r = export_model(dir, "resnet18", {}, 64);
  EXPECT_EQ(testing::declared_dims(r.proto.graph().input(0)),
            (std::vector<std::string>{"N", "3", "64", "64"}));
  EXPECT_EQ(testing::declared_dims(r.proto.graph().output(0)),
            (std::vector<std::string>{"N", "1000"}));
}

TEST(OnnxExport, AtomicWriteLeavesOnlyTheFile) {
  TempDir dir;
  auto model = models::build("block:3,3");
  infer::Graph g = infer::lower_module(*model);
  const std::string path = dir.file("out.onnx");
  testing::write_bytes(path, "old content");
  io::write_onnx(g, path);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.onnx"});
  onnx::ModelProto m = testing::read_onnx_proto(path);
  EXPECT_EQ(m.graph().node_size(), 7);  // conv, BN, ReLU, conv, BN, add, ReLU
}

TEST(OnnxExport, BadPathNamesTheFile) {
  TempDir dir;
  auto model = models::build("block:3,3");
  infer::Graph g = infer::lower_module(*model);
  const std::string path = dir.file("no_such_dir/out.onnx");
  EXPECT_IO_ERROR(io::write_onnx(g, path), path);
  EXPECT_TRUE(dir.entries().empty());
  // A directory where the file should go: nothing replaced, the message names it.
  EXPECT_IO_ERROR(io::write_onnx(g, dir.path().string() + "/"), dir.path().string());
}

TEST(OnnxExport, InvalidGraphNamesTheFile) {
  TempDir dir;
  infer::Graph g;
  g.add_value("input");
  const std::string path = dir.file("empty.onnx");
  EXPECT_IO_ERROR(io::write_onnx(g, path), path);
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace resnet
