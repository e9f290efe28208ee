// Freezing (nn/freeze.h): spec resolution and its errors, frozen BatchNorm in eval mode
// while the network trains, the backward pass stopping at the frozen prefix, gradients
// equal to the unfrozen network's, and PyTorch's requires_grad=False with frozen BN in
// eval mode (tests/fixtures/finetune, tools/gen_finetune_fixtures.py).

#include "resnet/nn/freeze.h"

#include <gtest/gtest.h>

#include <map>

#include "resnet/infer/compile_chain.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/resnet.h"
#include "support/deterministic_weights.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

constexpr uint64_t kSeed = 7;  // tools/gen_finetune_fixtures.py SEED

nn::ModulePtr resnet20() {
  models::ModelOptions o;
  o.num_classes = 10;
  auto m = models::build("resnet20", o);
  testing::fill_deterministic(*m, kSeed);
  return m;
}

std::map<std::string, Tensor> snapshot(nn::Module& m) {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : m.state_dict()) out[name] = t->clone();
  return out;
}

TEST(Freeze, ResolvesPathsAndBackbone) {
  auto m = models::build("resnet18");
  EXPECT_EQ(nn::resolve_freeze_spec(*m, "conv1,bn1,layer1,layer3.1,layer1"),
            (std::vector<std::string>{"conv1", "bn1", "layer1", "layer3.1"}));
  EXPECT_EQ(nn::resolve_freeze_spec(*m, "backbone"),
            (std::vector<std::string>{"conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                      "layer3", "layer4", "avgpool"}));
  EXPECT_TRUE(nn::resolve_freeze_spec(*m, "").empty());
  const int64_t frozen = nn::freeze(*m, "backbone");
  int64_t trainable = 0;
  for (auto& [name, p] : m->named_parameters()) {
    EXPECT_EQ(p->requires_grad, name.rfind("fc.", 0) == 0) << name;
    trainable += p->requires_grad ? 1 : 0;
  }
  EXPECT_EQ(trainable, 2);
  EXPECT_EQ(frozen, static_cast<int64_t>(m->named_parameters().size()) - 2);
}

TEST(Freeze, RefusesUnknownPathsInOneLine) {
  auto m = models::build("resnet18");
  EXPECT_TRAIN_ERROR(nn::freeze(*m, "layer1,layer9"), "'layer9' is no module", "layer4");
  EXPECT_TRAIN_ERROR(nn::freeze(*m, "layer1.5"), "'layer1.5'");
  EXPECT_TRAIN_ERROR(nn::freeze(*m, "layer1,,fc"), "empty");
  EXPECT_TRAIN_ERROR(nn::freeze(*m, "conv1.weight"), "'conv1.weight' is no module");
  // Nothing was frozen by a refused spec.
  for (auto& [name, p] : m->named_parameters()) EXPECT_TRUE(p->requires_grad) << name;
}

TEST(Freeze, FrozenBatchNormKeepsItsStatisticsInTrainingMode) {
  auto m = resnet20();
  nn::freeze(*m, "bn1,layer2.1");
  auto before = snapshot(*m);
  m->train();
  Tensor x = testing::deterministic_tensor(kSeed, "input", {4, 3, 12, 12});
  m->forward(x);
  for (auto& [name, t] : m->state_dict()) {
    const bool frozen_bn = name.rfind("bn1.", 0) == 0 || name.rfind("layer2.1.bn", 0) == 0;
    const bool buffer = name.find("running_") != std::string::npos ||
                        name.find("num_batches_tracked") != std::string::npos;
    if (!buffer) continue;
    EXPECT_EQ(testing::bitwise_equal(*t, before[name]), frozen_bn) << name;
  }
}

// One training pass (forward, backward of grad_output) of a network; returns the grads.
// With `compiled`, the frozen prefix runs compiled (as training runs it).
std::map<std::string, Tensor> grads_after_pass(nn::Module& m, bool input_grad,
                                               bool compiled = false) {
  static_cast<nn::ResNet&>(m).set_input_grad(input_grad);
  static_cast<nn::ResNet&>(m).set_prefix_compiler(compiled ? infer::compile_chain
                                                           : nn::ChainCompiler());
  m.train();
  m.zero_grad();
  Tensor y = m.forward(testing::deterministic_tensor(kSeed, "input", {4, 3, 12, 12}));
  Tensor g = m.backward(testing::deterministic_tensor(kSeed, "grad_output", {4, 10}));
  EXPECT_EQ(g.defined(), input_grad);
  std::map<std::string, Tensor> out;
  for (auto& [name, p] : m.named_parameters()) out[name] = p->grad.clone();
  return out;
}

class FreezeVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(FreezeVsTorch, GradientsAndStatistics) {
  const io::SafetensorsFile file = io::read_safetensors(
      std::string(RESNET_FIXTURE_DIR) + "/finetune/freeze_" + GetParam() + ".safetensors");
  const std::string spec = file.metadata.at("freeze");
  auto m = resnet20();
  auto initial = snapshot(*m);
  nn::freeze(*m, spec);
  // Without the input gradient (as training runs), the frozen prefix is skipped: run
  // module by module, or compiled.
  for (int pass = 0; pass < 3; ++pass) {
    const bool input_grad = pass == 2, compiled = pass == 1;
    for (auto& [name, t] : m->state_dict()) t->copy_from(initial[name]);
    auto grads = grads_after_pass(*m, input_grad, compiled);
    for (auto& [name, p] : m->named_parameters()) {
      const Tensor* expected = file.find("grad." + name);
      EXPECT_EQ(expected != nullptr, p->requires_grad) << name;
      if (expected != nullptr) {
        testing::expect_close(grads[name], *expected, 1e-4, spec + " grad " + name);
      } else {
        // Frozen: no gradient computed, the weights untouched.
        for (float v : std::as_const(grads[name]).values()) ASSERT_EQ(v, 0.f) << name;
      }
    }
    for (auto& [name, t] : m->state_dict()) {
      const Tensor* expected = file.find("state." + name);
      if (expected == nullptr) continue;
      if (t->dtype() == DType::i64)
        EXPECT_EQ(t->i64()[0], expected->i64()[0]) << name;
      else
        testing::expect_close(*t, *expected, 1e-4, spec + " state " + name);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, FreezeVsTorch, ::testing::Values("prefix", "middle"));

// The trainable part's gradients equal the unfrozen network's when that network runs the
// same BN layers in eval mode and computes every gradient.
TEST(Freeze, TrainableGradientsEqualTheUnfrozenNetworks) {
  for (const char* spec : {"conv1,bn1,layer1,layer2.0", "backbone", "layer1.1,layer3"}) {
    auto frozen = resnet20();
    nn::freeze(*frozen, spec);
    auto frozen_grads = grads_after_pass(*frozen, false);

    auto full = resnet20();
    full->train();
    std::vector<std::string> paths = nn::resolve_freeze_spec(*full, spec);
    // BN layers under the frozen paths run in eval mode; eval modules keep what backward
    // needs under GradEnabledGuard.
    for (auto& [name, mod] : full->named_modules()) {
      for (const auto& p : paths)
        if ((name == p || nn::is_under(name, p)) && dynamic_cast<nn::BatchNorm2d*>(mod))
          mod->eval();
    }
    nn::GradEnabledGuard keep(true);
    static_cast<nn::ResNet&>(*full).set_input_grad(true);
    full->zero_grad();
    full->forward(testing::deterministic_tensor(kSeed, "input", {4, 3, 12, 12}));
    full->backward(testing::deterministic_tensor(kSeed, "grad_output", {4, 10}));
    for (auto& [name, p] : full->named_parameters()) {
      bool is_frozen = false;
      for (const auto& path : paths) is_frozen = is_frozen || nn::is_under(name, path);
      if (is_frozen) continue;
      testing::expect_close(frozen_grads[name], p->grad, 1e-5, std::string(spec) + " " + name);
    }
  }
}

TEST(Freeze, BackboneRunsOnlyTheClassifiersBackward) {
  auto m = models::build("resnet18", {.num_classes = 5});
  nn::freeze(*m, "backbone");
  auto& net = static_cast<nn::ResNet&>(*m);
  net.set_input_grad(false);
  m->train();
  Tensor y = m->forward(testing::random_tensor({2, 3, 32, 32}, 3));
  // The whole backbone ran as in eval mode: nothing kept, statistics unchanged.
  for (auto& [name, mod] : m->named_modules()) {
    EXPECT_EQ(mod->is_training(), name == "fc") << name;
  }
  EXPECT_FALSE(m->backward(testing::random_tensor({2, 5}, 4)).defined());
  for (auto& [name, p] : m->named_parameters()) {
    double sum = 0.0;
    for (float v : std::as_const(p->grad).values()) sum += std::abs(v);
    EXPECT_EQ(sum > 0.0, name.rfind("fc.", 0) == 0) << name;
  }
  // eval() and train() again: the prefix returns to eval mode at the next forward.
  m->eval();
  m->train();
  m->forward(testing::random_tensor({2, 3, 32, 32}, 3));
  EXPECT_FALSE(m->named_modules()[0].second->is_training());
  m->backward(testing::random_tensor({2, 5}, 4));
}

}  // namespace
}  // namespace resnet
