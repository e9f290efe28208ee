// The seed's block beyond the PyTorch fixtures: its structure, its gradient path and
// finite differences of the whole block.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/init.h"
#include "resnet/nn/residual_block.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class BlockStructure : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// Printed text and state_dict keys against PyTorch's (fixtures/print, from the generator).
TEST_P(BlockStructure, PrintAndKeysMatchPyTorch) {
  auto [model, stem] = GetParam();
  auto m = models::build(model);
  const std::string dir = std::string(RESNET_FIXTURE_DIR) + "/print/";
  EXPECT_EQ(m->to_string() + "\n", slurp(dir + stem + ".txt"));
  std::string keys;
  for (auto& [name, t] : m->state_dict()) keys += name + "\n";
  EXPECT_EQ(keys, slurp(dir + stem + ".keys.txt"));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BlockStructure,
                         ::testing::Values(std::make_pair("block:64,128,2", "block_64_128_2"),
                                           std::make_pair("block:64,64", "block_64_64"),
                                           std::make_pair("block:5,8,2", "block_5_8_2"),
                                           std::make_pair("block:3,3,2", "block_3_3_2")),
                         [](const auto& info) { return info.param.second; });

// With bn2's scale and shift at zero the residual branch outputs 0, so an identity block
// computes relu(0 + x) and its input gradient is dy where x > 0: everything reaches the
// input through the shortcut.
TEST(ResidualBlockGolden, IdentityShortcutCarriesTheGradient) {
  nn::ResidualBlock block(3, 3, 1);
  auto sd = block.state_dict();
  for (auto& [name, t] : sd)
    if (name == "bn2.weight" || name == "bn2.bias") t->fill(0.f);
  block.train();
  Tensor x = testing::random_tensor({2, 3, 5, 5}, 7);
  Tensor y = block.forward(x);
  testing::expect_close(y, ref::relu_forward(x), 1e-6, "block output");
  Tensor dy = testing::random_tensor(y.shape(), 8);
  Tensor dx = block.backward(dy);
  testing::expect_close(dx, ref::relu_backward(dy, x), 1e-6, "block input gradient");
}

struct BlockCase {
  int64_t in, out, stride, n, h, w;
  friend void PrintTo(const BlockCase& c, std::ostream* os) { *os << c.name(); }
  std::string name() const {
    return "In" + std::to_string(in) + "Out" + std::to_string(out) + "S" + std::to_string(stride) +
           "N" + std::to_string(n) + "H" + std::to_string(h) + "W" + std::to_string(w);
  }
};

class BlockGradcheck : public ::testing::TestWithParam<BlockCase> {};

// RESNET_TEST_SEED varies the weights drawn (default 1), to hunt for flaky tolerances.
uint64_t seed_for_test() {
  const char* s = std::getenv("RESNET_TEST_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 1;
}

TEST_P(BlockGradcheck, InputAndParameterGradients) {
  const BlockCase c = GetParam();
  nn::init::manual_seed(seed_for_test());
  nn::ResidualBlock block(c.in, c.out, c.stride);
  Tensor x = testing::random_tensor({c.n, c.in, c.h, c.w}, 9);
  // f32 through two convolutions, two BNs and three ReLUs: a step of a few 1e-3 balances
  // rounding in the loss against ReLUs switching inside the step.
  testing::GradcheckOptions opt;
  opt.max_checks = 40;
  opt.eps = 3e-3;
  opt.rtol = 2e-2;
  opt.atol = 2e-3;
  opt.max_kink_fraction = 0.4;
  for (bool training : {true, false}) {
    block.train(training);
    nn::GradEnabledGuard grad(true);
    std::string mode = training ? " train" : " eval";
    auto r = testing::gradcheck([&](const Tensor& v) { return block.forward(v); },
                                [&](const Tensor& dy) {
                                  block.forward(x);
                                  block.zero_grad();
                                  return block.backward(dy);
                                },
                                x, opt, "d/dx " + c.name() + mode);
    EXPECT_TRUE(r.ok()) << r.report();
  }
}

// The deepest parameter, conv1.weight, through the whole block. A weight moves every
// output, so with ReLUs near zero some would switch inside any useful step; BN shifts of 3
// (scales 0.5) keep every ReLU input far from 0, making the block smooth, so this checks
// the chain rule alone (ReLU kinks are covered by the input check above and ReLU's own).
TEST_P(BlockGradcheck, DeepestWeightGradient) {
  const BlockCase c = GetParam();
  nn::init::manual_seed(seed_for_test());
  nn::ResidualBlock block(c.in, c.out, c.stride);
  for (auto& [name, t] : block.state_dict()) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) t->fill(3.f);
    if (name.rfind("bn", 0) == 0 && name.find(".weight") != std::string::npos) t->fill(0.5f);
  }
  Tensor x = testing::random_tensor({c.n, c.in, c.h, c.w}, 9);
  testing::GradcheckOptions opt;
  opt.max_checks = 40;
  opt.eps = 3e-3;
  opt.atol = 5e-3;  // f32 rounding of a loss of magnitude ~100, divided by 2 * eps
  // Training-mode BN curves the loss in the weights enough that one-sided differences
  // part even without a kink; those elements are still bounded by them.
  opt.max_kink_fraction = 0.5;
  for (bool training : {true, false}) {
    block.train(training);
    nn::GradEnabledGuard grad(true);
    Tensor& w = block.named_parameters()[0].second->value;  // conv1.weight
    Tensor w0 = w.clone();
    Tensor y = block.forward(x);
    Tensor loss_w = testing::random_tensor(y.shape(), 10);
    block.zero_grad();
    block.backward(loss_w);
    Tensor analytic = block.named_parameters()[0].second->grad.clone();
    auto rw = testing::check_gradient(
        [&](const Tensor& v) {
          w.copy_from(v);
          return block.forward(x);
        },
        w0, loss_w, analytic, opt, "d/dconv1.weight " + c.name() + (training ? " train" : " eval"));
    w.copy_from(w0);
    EXPECT_TRUE(rw.ok()) << rw.report();
  }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, BlockGradcheck,
                         ::testing::Values(BlockCase{5, 5, 1, 3, 7, 9}, BlockCase{5, 8, 2, 3, 7, 9},
                                           BlockCase{3, 4, 1, 2, 5, 6}),
                         [](const auto& info) { return info.param.name(); });

// Eval mode without gradients runs every module by itself (the reference); with
// gradients, the training path (ReLU fused into the BN). Both must agree, also after the
// weights change between calls.
TEST(ResidualBlockFused, AgreesWithUnfusedAndSeesWeightUpdates) {
  for (auto [in, out, stride] : {std::tuple{5, 5, 1}, std::tuple{5, 8, 2}, std::tuple{16, 16, 1}}) {
    nn::ResidualBlock block(in, out, stride);
    for (auto& [name, t] : block.state_dict())
      if (t->dtype() == DType::f32 && name.find("running_var") == std::string::npos)
        t->copy_from(testing::random_tensor(t->shape(), 11, -0.5f, 0.5f));
    block.eval();
    Tensor x = testing::random_tensor({2, in, 9, 7}, 12);
    Tensor fused = block.forward(x);
    Tensor unfused;
    {
      nn::GradEnabledGuard grad(true);
      unfused = block.forward(x);
    }
    testing::expect_close(fused, unfused, 1e-5, "fused vs unfused");
    block.named_parameters()[0].second->value.fill(0.01f);
    Tensor fused2 = block.forward(x);
    nn::GradEnabledGuard grad(true);
    testing::expect_close(fused2, block.forward(x), 1e-5, "fused vs unfused after a weight change");
  }
}

TEST(ResidualBlockErrors, WrongInput) {
  nn::ResidualBlock block(5, 8, 2);
  block.eval();
  EXPECT_THROW(block.forward(Tensor({2, 4, 7, 9})), Error);
  EXPECT_THROW(block.forward(Tensor({5, 7, 9})), Error);
  EXPECT_THROW(nn::ResidualBlock(0, 8, 1), Error);
}

TEST(ModuleTree, TrainEvalRecursesAndCountsParameters) {
  nn::ResidualBlock block(64, 128, 2);
  block.eval();
  for (auto& [name, m] : block.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  block.train();
  for (auto& [name, m] : block.named_modules()) EXPECT_TRUE(m->is_training()) << name;
  // conv1 64*128*9 + bn1 256 + conv2 128*128*9 + bn2 256 + shortcut conv 64*128 + bn 256
  EXPECT_EQ(block.parameter_count(), 73728 + 256 + 147456 + 256 + 8192 + 256);
}

}  // namespace
}  // namespace resnet
