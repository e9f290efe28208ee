// Sgd against torch.optim.SGD on the same gradients (tools/gen_train_fixtures.py), a golden
// case by hand, the weight-decay exemption rule, and the state's save/load round trip.

#include "resnet/train/sgd.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::Sgd;
using train::SgdOptions;

// The parameters of the fixture, owned by the test, named as in sgd.json.
struct ParamSet {
  std::vector<std::string> names;
  std::vector<nn::Parameter> params;

  std::vector<std::pair<std::string, nn::Parameter*>> named() {
    std::vector<std::pair<std::string, nn::Parameter*>> out;
    for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], &params[i]);
    return out;
  }
};

class SgdFixture {
 public:
  SgdFixture()
      : file_(io::read_safetensors(testing::train_fixture("sgd.safetensors"))),
        json_(testing::read_train_json("sgd.json")) {}

  const nlohmann::json& json() const { return json_; }
  const Tensor& tensor(const std::string& name) const {
    const Tensor* t = file_.find(name);
    if (t == nullptr) throw std::runtime_error("sgd.safetensors lacks " + name);
    return *t;
  }
  ParamSet initial_params() const {
    ParamSet set;
    set.names = json_.at("params").get<std::vector<std::string>>();
    for (const std::string& name : set.names) {
      const Tensor& v = tensor("init." + name);
      set.params.push_back({v.clone(), Tensor(v.shape())});
    }
    return set;
  }
  void load_grads(ParamSet& set, int step) const {
    for (size_t i = 0; i < set.names.size(); ++i) {
      std::ostringstream key;
      key << "grad." << step << "." << set.names[i];
      set.params[i].grad.copy_from(tensor(key.str()));
    }
  }
  const nlohmann::json& find_case(const std::string& name) const {
    for (const auto& c : json_.at("cases")) {
      if (c.at("name") == name) return c;
    }
    throw std::runtime_error("sgd.json lacks case " + name);
  }
  static SgdOptions options_of(const nlohmann::json& c) {
    SgdOptions o;
    o.lr = c.at("lr").at(0).get<double>();
    o.momentum = c.at("momentum").get<double>();
    o.dampening = c.at("dampening").get<double>();
    o.weight_decay = c.at("weight_decay").get<double>();
    o.nesterov = c.at("nesterov").get<bool>();
    o.decay_bn_and_bias = c.at("decay_bn_and_bias").get<bool>();
    return o;
  }

 private:
  io::SafetensorsFile file_;
  nlohmann::json json_;
};

const SgdFixture& fixture() {
  static const SgdFixture f;
  return f;
}

// Bounds each step's difference to PyTorch: both round in f32 after every operation, but
// PyTorch's vectorized kernels may fuse a multiply-add, so allow a few ulps.
const double kSgdTolerance = 1e-6;

class SgdVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(SgdVsTorch, EveryStepAndMomentumBuffers) {
  const SgdFixture& f = fixture();
  const nlohmann::json& c = f.find_case(GetParam());
  ParamSet set = f.initial_params();
  Sgd sgd(set.named(), SgdFixture::options_of(c));
  const int steps = f.json().at("steps").get<int>();
  for (int k = 0; k < steps; ++k) {
    sgd.set_lr(c.at("lr").at(k).get<double>());
    f.load_grads(set, k);
    sgd.step();
    for (size_t i = 0; i < set.names.size(); ++i) {
      std::ostringstream key;
      key << GetParam() << ".step" << k << "." << set.names[i];
      testing::expect_close(set.params[i].value, f.tensor(key.str()), kSgdTolerance, key.str());
    }
  }
  const auto state = sgd.state_tensors();
  if (c.at("momentum").get<double>() == 0.0) {
    EXPECT_TRUE(state.empty());
    return;
  }
  ASSERT_EQ(state.size(), set.names.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ(state[i].first, "momentum_buffer." + set.names[i]);
    testing::expect_close(state[i].second, f.tensor(GetParam() + "." + state[i].first),
                          kSgdTolerance, state[i].first);
  }
}

INSTANTIATE_TEST_SUITE_P(SgdTorchCases, SgdVsTorch,
                         ::testing::Values("plain", "momentum", "dampening_decay", "nesterov_decay",
                                           "no_decay_bn_bias"),
                         [](const auto& info) { return info.param; });

// p = 1, g = 2 each step, lr 0.1, momentum 0.9, weight decay 0.5:
//   step 1: d = 2 + 0.5 * 1 = 2.5; buf = d = 2.5 (PyTorch's first step: no 0.9 * 0 + ...);
//           p = 1 - 0.1 * 2.5 = 0.75.
//   step 2: d = 2 + 0.5 * 0.75 = 2.375; buf = 0.9 * 2.5 + 2.375 = 4.625; p = 0.75 - 0.4625
//           = 0.2875.
//   With nesterov, step 1: d = 2.5 + 0.9 * 2.5 = 4.75, p = 1 - 0.475 = 0.525.
TEST(Sgd, GoldenFirstStepInitializesBufferWithGradient) {
  nn::Parameter p{Tensor::full({1}, 1.f), Tensor::full({1}, 2.f)};
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.5;
  Sgd sgd({{"w", &p}}, o);
  sgd.step();
  EXPECT_FLOAT_EQ(p.value.f32()[0], 0.75f);
  EXPECT_FLOAT_EQ(sgd.state_tensors().at(0).second.f32()[0], 2.5f);
  sgd.step();
  EXPECT_FLOAT_EQ(sgd.state_tensors().at(0).second.f32()[0], 4.625f);
  EXPECT_FLOAT_EQ(p.value.f32()[0], 0.2875f);

  nn::Parameter q{Tensor::full({1}, 1.f), Tensor::full({1}, 2.f)};
  o.nesterov = true;
  Sgd nesterov({{"w", &q}}, o);
  nesterov.step();
  EXPECT_FLOAT_EQ(q.value.f32()[0], 0.525f);
}

TEST(Sgd, NoDecayRuleByNameAndRank) {
  EXPECT_TRUE(train::is_bn_or_bias("fc.bias", Tensor({10})));
  EXPECT_TRUE(train::is_bn_or_bias("bias", Tensor({10})));
  EXPECT_TRUE(train::is_bn_or_bias("layer1.0.bn1.weight", Tensor({64})));
  EXPECT_TRUE(train::is_bn_or_bias("conv.bias", Tensor({3, 3})));  // by name, whatever rank
  EXPECT_FALSE(train::is_bn_or_bias("fc.weight", Tensor({10, 64})));
  EXPECT_FALSE(train::is_bn_or_bias("conv1.weight", Tensor({64, 3, 7, 7})));
  EXPECT_FALSE(train::is_bn_or_bias("unbias", Tensor({2, 2})));
}

// On a real ResNet the rule exempts exactly the BN parameters and the Linear bias.
TEST(Sgd, NoDecayRuleOnResnet20) {
  auto model = models::build("resnet20");
  SgdOptions o;
  o.weight_decay = 1e-4;
  o.decay_bn_and_bias = false;
  Sgd sgd(*model, o);
  int decayed = 0, exempt = 0;
  for (auto& [name, p] : model->named_parameters()) {
    const bool is_bn = name.find("bn") != std::string::npos ||
                       name.find("shortcut.1.") != std::string::npos ||
                       name.find("downsample.1.") != std::string::npos;
    const bool expect_decay = !is_bn && name != "fc.bias";
    EXPECT_EQ(sgd.decays(name), expect_decay) << name << " " << p->value.shape_str();
    (sgd.decays(name) ? decayed : exempt)++;
  }
  EXPECT_EQ(decayed, 20);  // 19 convolutions (no projection shortcuts) and fc.weight
  EXPECT_GT(exempt, 0);
  o.decay_bn_and_bias = true;
  Sgd all(*model, o);
  for (auto& [name, p] : model->named_parameters()) EXPECT_TRUE(all.decays(name)) << name;
}

// With zero gradients only weight decay moves parameters: exempt ones must stay put.
TEST(Sgd, ExemptParametersAreNotDecayed) {
  nn::Parameter w{Tensor::full({2, 2}, 1.f), Tensor({2, 2})};
  nn::Parameter b{Tensor::full({2}, 1.f), Tensor({2})};
  nn::Parameter g{Tensor::full({2}, 1.f), Tensor({2})};
  SgdOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  o.decay_bn_and_bias = false;
  Sgd sgd({{"fc.weight", &w}, {"fc.bias", &b}, {"bn.weight", &g}}, o);
  sgd.step();
  EXPECT_FLOAT_EQ(w.value.f32()[0], 0.95f);
  EXPECT_FLOAT_EQ(b.value.f32()[0], 1.f);
  EXPECT_FLOAT_EQ(g.value.f32()[0], 1.f);
}

// Three steps, state written to a checkpoint file beside the parameters, a fresh optimizer
// over fresh parameters loads both and takes three more steps: bit-identical to six steps.
TEST(Sgd, StateSaveLoadRoundTrip) {
  const SgdFixture& f = fixture();
  const SgdOptions o = SgdFixture::options_of(f.find_case("nesterov_decay"));
  ParamSet straight = f.initial_params();
  Sgd a(straight.named(), o);
  ParamSet resumed = f.initial_params();
  Sgd b(resumed.named(), o);
  testing::TempDir dir;
  const std::string path = dir.file("checkpoint.safetensors");
  for (int k = 0; k < 3; ++k) {
    f.load_grads(straight, k);
    a.step();
    f.load_grads(resumed, k);
    b.step();
  }
  std::vector<std::pair<std::string, Tensor>> checkpoint;
  for (size_t i = 0; i < resumed.names.size(); ++i) {
    checkpoint.emplace_back(resumed.names[i], resumed.params[i].value);
  }
  for (auto& entry : b.state_tensors()) checkpoint.push_back(entry);
  io::write_safetensors(path, checkpoint);

  const io::SafetensorsFile file = io::read_safetensors(path);
  ParamSet fresh = f.initial_params();
  for (size_t i = 0; i < fresh.names.size(); ++i) {
    fresh.params[i].value.copy_from(*file.find(fresh.names[i]));
  }
  Sgd c(fresh.named(), o);
  c.load_state(file.tensors);  // model tensors in the same file are ignored
  EXPECT_EQ(c.state_tensors().size(), fresh.names.size());
  for (int k = 3; k < 6; ++k) {
    f.load_grads(straight, k);
    a.step();
    f.load_grads(fresh, k);
    c.step();
  }
  for (size_t i = 0; i < fresh.names.size(); ++i) {
    EXPECT_EQ(max_abs_diff(fresh.params[i].value, straight.params[i].value), 0.f) << fresh.names[i];
  }
  // Loading state without buffers resets to a fresh optimizer.
  c.load_state({});
  EXPECT_TRUE(c.state_tensors().empty());
}

TEST(Sgd, LoadStateRejectsBadTensorsAndKeepsState) {
  nn::Parameter w{Tensor::full({2, 3}, 1.f), Tensor::full({2, 3}, 1.f)};
  nn::Parameter b{Tensor::full({3}, 1.f), Tensor::full({3}, 1.f)};
  SgdOptions o;
  o.momentum = 0.9;
  Sgd sgd({{"fc.weight", &w}, {"fc.bias", &b}}, o);
  sgd.step();
  const Tensor w_buf = Tensor::full({2, 3}, 7.f), b_buf = Tensor::full({3}, 7.f);
  EXPECT_TRAIN_ERROR(sgd.load_state({{"momentum_buffer.fc.weight", w_buf}}),
                     "missing 'momentum_buffer.fc.bias'", "1 of 2");
  EXPECT_TRAIN_ERROR(sgd.load_state({{"momentum_buffer.fc.weight", w_buf},
                                     {"momentum_buffer.fc.bias", Tensor({2})}}),
                     "momentum_buffer.fc.bias", "expected shape [3]", "got [2]");
  EXPECT_TRAIN_ERROR(sgd.load_state({{"momentum_buffer.conv.weight", w_buf}}),
                     "'momentum_buffer.conv.weight'", "names no parameter");
  EXPECT_TRAIN_ERROR(sgd.load_state({{"momentum_buffer.fc.bias", Tensor({3}, DType::i64)},
                                     {"momentum_buffer.fc.weight", w_buf}}),
                     "momentum_buffer.fc.bias", "f32", "i64");
  EXPECT_TRAIN_ERROR(
      sgd.load_state({{"momentum_buffer.fc.bias", b_buf}, {"momentum_buffer.fc.bias", b_buf}}),
      "momentum_buffer.fc.bias", "twice");
  // Nothing was replaced: the buffers still hold the first step's gradient.
  for (const auto& [name, t] : sgd.state_tensors()) EXPECT_FLOAT_EQ(t.f32()[0], 1.f) << name;

  sgd.load_state({{"fc.weight", w.value},
                  {"momentum_buffer.fc.bias", b_buf},
                  {"momentum_buffer.fc.weight", w_buf}});
  const auto state = sgd.state_tensors();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "momentum_buffer.fc.weight");  // parameter order, not file order
  EXPECT_FLOAT_EQ(state[0].second.f32()[0], 7.f);
  EXPECT_FALSE(state[0].second.same_storage(w_buf));  // copied
}

TEST(Sgd, RejectsBadOptionsAndGradients) {
  nn::Parameter w{Tensor({2}), Tensor({2})};
  auto make = [&](SgdOptions o) { Sgd sgd({{"w", &w}}, o); };
  SgdOptions o;
  o.nesterov = true;
  EXPECT_TRAIN_ERROR(make(o), "Nesterov", "momentum");
  o.momentum = 0.9;
  o.dampening = 0.1;
  EXPECT_TRAIN_ERROR(make(o), "Nesterov", "dampening");
  o = SgdOptions();
  o.lr = -1;
  EXPECT_TRAIN_ERROR(make(o), "lr", "-1");
  o = SgdOptions();
  o.weight_decay = -0.1;
  EXPECT_TRAIN_ERROR(make(o), "weight_decay");
  EXPECT_TRAIN_ERROR(Sgd({{"w", &w}, {"w", &w}}, SgdOptions()), "'w'", "twice");

  Sgd sgd({{"w", &w}}, SgdOptions());
  EXPECT_TRAIN_ERROR(sgd.set_lr(-0.5), "lr", "-0.5");
  w.grad = Tensor({3});
  EXPECT_TRAIN_ERROR(sgd.step(), "gradient of 'w'", "[2]", "[3]");
}

TEST(Sgd, ZeroGradAndUndefinedGradient) {
  nn::Parameter w{Tensor::full({2}, 1.f), Tensor::full({2}, 3.f)};
  nn::Parameter frozen{Tensor::full({2}, 1.f), Tensor()};
  SgdOptions o;
  o.weight_decay = 0.1;
  Sgd sgd({{"w", &w}, {"frozen", &frozen}}, o);
  sgd.zero_grad();
  EXPECT_EQ(max_abs(w.grad), 0.f);
  sgd.step();  // an undefined grad is skipped, like a None grad in PyTorch
  EXPECT_FLOAT_EQ(frozen.value.f32()[0], 1.f);
  EXPECT_FLOAT_EQ(w.value.f32()[0], 0.99f);
}

}  // namespace
}  // namespace resnet
