// The seed's block against PyTorch: fixtures written by tools/gen_fixtures.py hold the
// input, the weights, and PyTorch's output, input gradient, parameter gradients and
// state after one pass, in eval and in training mode.

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "resnet/io/checkpoint.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

const double kTolerance = 1e-4;  // the README's "Numerics": fraction of the reference's max |x|

struct BlockCase {
  std::string dir;
};

std::string case_path(const std::string& dir, const std::string& file) {
  return std::string(RESNET_FIXTURE_DIR) + "/" + dir + "/" + file;
}

std::string model_of(const std::string& dir) {
  std::ifstream in(case_path(dir, "case.json"));
  return nlohmann::json::parse(in).at("model").get<std::string>();
}

void expect_state_equal(nn::Module& model, const std::string& path, const std::string& what) {
  io::SafetensorsFile expected = io::read_safetensors(path);
  for (auto& [name, t] : model.state_dict()) {
    const Tensor* e = expected.find(name);
    ASSERT_NE(e, nullptr) << what << ": " << name << " missing from " << path;
    if (t->dtype() == DType::i64) {
      EXPECT_EQ(t->i64()[0], e->i64()[0]) << what << ": " << name;
    } else {
      testing::expect_close(*t, *e, kTolerance, what + " " + name);
    }
  }
}

class BlockVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(BlockVsTorch, EvalForwardFused) {
  const std::string dir = GetParam();
  auto model = models::build(model_of(dir));
  io::load_state_dict(*model, case_path(dir, "weights.safetensors"));
  model->eval();
  Tensor y = model->forward(io::read_npy(case_path(dir, "input.npy")));
  testing::expect_close(y, io::read_npy(case_path(dir, "output_eval.npy")), kTolerance,
                        dir + " output");
}

void check_pass(const std::string& dir, const std::string& mode) {
  auto model = models::build(model_of(dir));
  io::load_state_dict(*model, case_path(dir, "weights.safetensors"));
  model->train(mode == "train");
  nn::GradEnabledGuard grad(true);
  Tensor y = model->forward(io::read_npy(case_path(dir, "input.npy")));
  testing::expect_close(y, io::read_npy(case_path(dir, "output_" + mode + ".npy")), kTolerance,
                        dir + " " + mode + " output");
  model->zero_grad();
  Tensor dx = model->backward(io::read_npy(case_path(dir, "grad_output_" + mode + ".npy")));
  testing::expect_close(dx, io::read_npy(case_path(dir, "grad_input_" + mode + ".npy")), kTolerance,
                        dir + " " + mode + " grad_input");
  io::SafetensorsFile grads =
      io::read_safetensors(case_path(dir, "grads_" + mode + ".safetensors"));
  for (auto& [name, p] : model->named_parameters()) {
    const Tensor* e = grads.find(name);
    ASSERT_NE(e, nullptr) << name;
    testing::expect_close(p->grad, *e, kTolerance, dir + " " + mode + " grad " + name);
  }
  expect_state_equal(*model, case_path(dir, "state_" + mode + ".safetensors"),
                     dir + " " + mode + " state");
}

TEST_P(BlockVsTorch, EvalForwardBackward) {
  check_pass(GetParam(), "eval");
}
TEST_P(BlockVsTorch, TrainForwardBackward) {
  check_pass(GetParam(), "train");
}

// Gradients accumulate across backward passes, as in PyTorch.
TEST_P(BlockVsTorch, GradientsAccumulate) {
  const std::string dir = GetParam();
  auto model = models::build(model_of(dir));
  io::load_state_dict(*model, case_path(dir, "weights.safetensors"));
  model->eval();
  nn::GradEnabledGuard grad(true);
  Tensor x = io::read_npy(case_path(dir, "input.npy"));
  Tensor dy = io::read_npy(case_path(dir, "grad_output_eval.npy"));
  model->zero_grad();
  model->forward(x);
  model->backward(dy);
  model->forward(x);
  model->backward(dy);
  io::SafetensorsFile grads = io::read_safetensors(case_path(dir, "grads_eval.safetensors"));
  for (auto& [name, p] : model->named_parameters()) {
    Tensor twice = grads.find(name)->clone();
    for (float& v : twice.values()) v *= 2.f;
    testing::expect_close(p->grad, twice, kTolerance, name + " accumulated twice");
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BlockVsTorch,
                         ::testing::Values("block_5_5_1", "block_5_8_2", "block_4_6_1",
                                           "block_3_3_2"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace resnet
