// Ours -> ONNX -> ours through the library's own writer and reader: a zoo network with
// deterministic weights is lowered, written by io::write_onnx, read back by io::read_onnx,
// and the imported graph must be the same network: the same operators with the same
// windows, every parameter under its state_dict name with its exact bytes, and outputs
// (the reference interpreter's and the compiled model's) equal to the module's eval
// forward within the numerics contract.

#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/onnx.h"
#include "resnet/models/zoo.h"
#include "support/deterministic_weights.h"

namespace resnet {
namespace {

using infer::Graph;
using testing::TempDir;

const float kTolerance = 1e-4f;  // fraction of the reference's max |x| (the numerics contract)

struct Case {
  std::string model;
  char shortcut;
  Shape input;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " shortcut " << c.shortcut << " input " << shape_str(c.input);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.model + "_" + info.param.shortcut;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.f32(), b.f32(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

class OnnxWriteRead : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    models::ModelOptions options;
    options.cifar_shortcut = c.shortcut;
    options.in_channels = c.input[1];
    model_ = models::build(c.model, options);
    testing::fill_deterministic(*model_, 23);
    model_->eval();
    lowered_ = infer::lower_module(*model_);
    path_ = dir_.file("model.onnx");
    io::write_onnx(lowered_, path_);
    imported_ = io::read_onnx(path_);
    x_ = testing::deterministic_tensor(23, "input", c.input);
    nn::GradEnabledGuard no_grad(false);
    expected_ = model_->forward(x_);
  }

  TempDir dir_;
  nn::ModulePtr model_;
  Graph lowered_, imported_;
  std::string path_;
  Tensor x_, expected_;
};

// The same operators in the same order, reading the same inputs, with the same windows.
TEST_P(OnnxWriteRead, StructureSurvives) {
  ASSERT_EQ(imported_.nodes.size(), lowered_.nodes.size());
  EXPECT_EQ(imported_.num_inputs, lowered_.num_inputs);
  for (size_t i = 0; i < lowered_.nodes.size(); ++i) {
    const infer::Node &a = lowered_.nodes[i], &b = imported_.nodes[i];
    SCOPED_TRACE("node " + std::to_string(i) + " " + a.name);
    EXPECT_EQ(b.op, a.op) << infer::op_name(b.op) << " vs " << infer::op_name(a.op);
    ASSERT_EQ(b.inputs.size(), a.inputs.size());
    for (size_t k = 0; k < a.inputs.size(); ++k) {
      // Value names differ where the graph input is called "input"; the producers match.
      const int va = a.inputs[k], vb = b.inputs[k];
      if (va < lowered_.num_inputs) {
        EXPECT_LT(vb, imported_.num_inputs);
      } else {
        EXPECT_EQ(imported_.values[vb].name, lowered_.values[va].name);
      }
    }
    const infer::Window &wa = a.window, &wb = b.window;
    if (a.op == infer::OpKind::conv || a.op == infer::OpKind::max_pool ||
        a.op == infer::OpKind::avg_pool || a.op == infer::OpKind::subsample) {
      EXPECT_EQ(wb.stride_h, wa.stride_h);
      EXPECT_EQ(wb.stride_w, wa.stride_w);
    }
    if (a.op == infer::OpKind::conv || a.op == infer::OpKind::max_pool ||
        a.op == infer::OpKind::avg_pool) {
      EXPECT_EQ(wb.kernel_h, wa.kernel_h);
      EXPECT_EQ(wb.kernel_w, wa.kernel_w);
      EXPECT_EQ((std::vector<int64_t>{wb.pad_t, wb.pad_l, wb.pad_b, wb.pad_r}),
                (std::vector<int64_t>{wa.pad_t, wa.pad_l, wa.pad_b, wa.pad_r}));
      EXPECT_EQ(wb.groups, wa.groups);
      EXPECT_EQ(wb.ceil_mode, wa.ceil_mode);
    }
    if (a.op == infer::OpKind::batch_norm) {
      // ONNX's epsilon attribute is a float.
      EXPECT_EQ(b.eps, static_cast<double>(static_cast<float>(a.eps)));
    }
    if (a.op == infer::OpKind::pad_channels) {
      EXPECT_EQ(b.pads, a.pads);
    }
  }
  EXPECT_NO_THROW(imported_.validate());
}

// Every parameter keeps its state_dict name, its shape and its exact bytes; and every
// state_dict entry a forward pass reads is among them.
TEST_P(OnnxWriteRead, ParameterNamesAndValuesSurviveExactly) {
  const auto want = lowered_.all_params();
  const auto got = imported_.all_params();
  ASSERT_EQ(got.size(), want.size());
  std::map<std::string, const Tensor*> by_name;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]->name, want[i]->name) << "parameter " << i;
    EXPECT_TRUE(same_bytes(got[i]->value, want[i]->value)) << want[i]->name;
    by_name[got[i]->name] = &got[i]->value;
  }
  size_t entries = 0;
  for (auto& [name, t] : model_->state_dict()) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    ++entries;
    auto it = by_name.find(name);
    ASSERT_NE(it, by_name.end()) << name << " missing from the imported graph";
    EXPECT_TRUE(same_bytes(*it->second, *t)) << name;
  }
  EXPECT_EQ(entries, by_name.size()) << "the imported graph has parameters the model lacks";
}

TEST_P(OnnxWriteRead, ReferenceRunMatchesModule) {
  const Tensor got = infer::run_reference(imported_, x_);
  ASSERT_EQ(got.shape(), expected_.shape());
  EXPECT_LE(max_abs_diff(got, expected_), kTolerance * max_abs(expected_));
  EXPECT_GT(max_abs(expected_), 0.f);
}

TEST_P(OnnxWriteRead, CompiledModelMatchesModule) {
  infer::CompiledModel compiled(imported_);
  const Tensor got = compiled.run(x_);
  ASSERT_EQ(got.shape(), expected_.shape());
  EXPECT_LE(max_abs_diff(got, expected_), kTolerance * max_abs(expected_)) << compiled.describe();
}

// With H and W fixed at export (shapes filled), the file reads back the same way and
// computes the same thing at that size.
TEST_P(OnnxWriteRead, FixedSizeExportComputesTheSame) {
  Graph sized = infer::lower_module(*model_);
  sized.infer_shapes(x_.shape());
  const std::string path = dir_.file("sized.onnx");
  io::write_onnx(sized, path);
  Graph back = io::read_onnx(path);
  ASSERT_EQ(back.nodes.size(), sized.nodes.size());
  infer::CompiledModel compiled(std::move(back));
  const Tensor got = compiled.run(x_);
  ASSERT_EQ(got.shape(), expected_.shape());
  EXPECT_LE(max_abs_diff(got, expected_), kTolerance * max_abs(expected_));
}

INSTANTIATE_TEST_SUITE_P(Zoo, OnnxWriteRead,
                         ::testing::Values(Case{"resnet20", 'A', {2, 3, 32, 32}},
                                           Case{"resnet20", 'B', {2, 1, 28, 28}},
                                           Case{"plain20", 'A', {1, 3, 32, 32}},
                                           Case{"resnet18", 'A', {2, 3, 40, 40}},
                                           Case{"block:5,8,2", 'A', {2, 5, 9, 7}}),
                         case_name);

}  // namespace
}  // namespace resnet
