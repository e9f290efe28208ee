#pragma once
// The fixture of the single-feature ONNX import tests: build small models with
// OnnxBuilder, import them through a real file, and compare two imports' outputs.

#include <gtest/gtest.h>

#include "onnx_model_builder.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/onnx.h"
#include "support/deterministic_weights.h"

namespace resnet::testing {

class OnnxFeatures : public ::testing::Test {
 protected:
  infer::Graph import(const OnnxBuilder& b) { return io::read_onnx(b.save(dir_.file("m.onnx"))); }
  // Both models imported and run on one deterministic input; their outputs must agree.
  void expect_same(const OnnxBuilder& a, const OnnxBuilder& b, const Shape& input) {
    const Tensor x = deterministic_tensor(5, "input", input);
    const Tensor ya = infer::run_reference(import(a), x);
    const Tensor yb = infer::run_reference(import(b), x);
    ASSERT_EQ(ya.shape(), yb.shape());
    EXPECT_LE(max_abs_diff(ya, yb), 1e-6f * max_abs(yb));
  }

  Tensor weights(const std::string& name, Shape shape) {
    return deterministic_tensor(3, name, std::move(shape));
  }

  TempDir dir_;
};

}  // namespace resnet::testing
