// Sgd with frozen parameters (no update, decay or momentum buffer; state save/load) and
// per-parameter learning-rate multipliers (--lr-backbone).

#include <gtest/gtest.h>

#include <cstring>

#include "resnet/models/zoo.h"
#include "resnet/nn/freeze.h"
#include "resnet/train/sgd.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::Sgd;
using train::SgdOptions;

SgdOptions finetune_options() {
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 1e-3;
  return o;
}

// Gives every parameter a gradient that differs per step.
void fake_gradients(nn::Module& m, uint32_t step) {
  uint32_t k = 0;
  for (auto& [name, p] : m.named_parameters())
    p->grad.copy_from(testing::random_tensor(p->value.shape(), 1000 * step + k++));
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(SgdFinetune, FrozenParametersStayBitIdenticalAndHaveNoBuffers) {
  auto m = models::build("resnet20");
  nn::freeze(*m, "conv1,bn1,layer1");
  std::vector<std::pair<std::string, Tensor>> initial;
  for (auto& [name, p] : m->named_parameters()) initial.emplace_back(name, p->value.clone());
  Sgd sgd(*m, finetune_options());
  for (uint32_t step = 0; step < 3; ++step) {
    fake_gradients(*m, step);  // even a stray gradient does not move a frozen parameter
    sgd.step();
  }
  size_t i = 0;
  for (auto& [name, p] : m->named_parameters()) {
    EXPECT_EQ(same_bytes(p->value, initial[i++].second), !p->requires_grad) << name;
  }
  auto state = sgd.state_tensors();
  size_t trainable = 0;
  for (auto& [name, p] : m->named_parameters()) trainable += p->requires_grad ? 1 : 0;
  EXPECT_EQ(state.size(), trainable);
  for (auto& [key, t] : state) {
    EXPECT_EQ(key.find("momentum_buffer.layer1."), std::string::npos) << key;
    EXPECT_NE(key, "momentum_buffer.conv1.weight");
  }

  // The state round-trips into a fresh optimizer, and both continue alike.
  Sgd other(*m, finetune_options());
  other.load_state(state);
  fake_gradients(*m, 7);
  std::vector<Tensor> grads;
  for (auto& [name, p] : m->named_parameters()) grads.push_back(p->grad.clone());
  std::vector<Tensor> values;
  for (auto& [name, p] : m->named_parameters()) values.push_back(p->value.clone());
  sgd.step();
  std::vector<Tensor> after_first;
  i = 0;
  for (auto& [name, p] : m->named_parameters()) {
    after_first.push_back(p->value.clone());
    p->value.copy_from(values[i]);
    p->grad.copy_from(grads[i++]);
  }
  other.step();
  i = 0;
  for (auto& [name, p] : m->named_parameters())
    EXPECT_TRUE(same_bytes(p->value, after_first[i++])) << name;
}

TEST(SgdFinetune, RefusesABufferOfAFrozenParameter) {
  auto m = models::build("resnet20");
  Sgd unfrozen(*m, finetune_options());
  fake_gradients(*m, 0);
  unfrozen.step();
  auto state = unfrozen.state_tensors();
  nn::freeze(*m, "layer1");
  Sgd frozen(*m, finetune_options());
  EXPECT_TRAIN_ERROR(frozen.load_state(state), "momentum_buffer.layer1.", "frozen");
}

TEST(SgdFinetune, LrMultiplierEqualsASeparateGroupsRate) {
  // Two parameter sets with the same values and gradients: one stepped with lr 0.05 and
  // multiplier 0.1, the other with lr 0.05 * 0.1; bit-identical, as PyTorch's param groups.
  nn::Parameter a, b;
  a.value = testing::random_tensor({5, 7}, 1);
  b.value = a.value.clone();
  a.grad = testing::random_tensor({5, 7}, 2);
  b.grad = a.grad.clone();
  SgdOptions oa = finetune_options(), ob = finetune_options();
  ob.lr = oa.lr * 0.1;
  Sgd sa({{"w", &a}}, oa), sb({{"w", &b}}, ob);
  sa.set_lr_multiplier("w", 0.1);
  for (int step = 0; step < 3; ++step) {
    sa.step();
    sb.step();
    sa.set_lr(0.02);  // a schedule scales both
    sb.set_lr(0.02 * 0.1);
  }
  EXPECT_TRUE(same_bytes(a.value, b.value));
  EXPECT_TRAIN_ERROR(sa.set_lr_multiplier("nope", 0.5), "'nope'");
  EXPECT_TRAIN_ERROR(sa.set_lr_multiplier("w", -1.0), "-1");
}

}  // namespace
}  // namespace resnet
