// Winograd in training is the network's decision (kMinBnValuesForWinograd in
// src/nn/resnet.cpp): when its deepest batch norms see fewer than 256 values per channel,
// no convolution uses it, since batch norm over few values amplifies Winograd's larger
// rounding error past the numerics contract (measured against PyTorch's float64 with
// tools/check_against_torch.py; see the README's "Numerics"). A step must then give,
// bit for bit, the gradients of a network whose convolutions were told never to use it.

#include <gtest/gtest.h>

#include <cstring>

#include "resnet/nn/conv2d.h"
#include "resnet/nn/init.h"
#include "resnet/nn/resnet.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

nn::ResNetConfig small_imagenet_net() {
  nn::ResNetConfig c;
  c.block = nn::ResNetConfig::Block::basic;
  c.stem = nn::ResNetConfig::Stem::imagenet;
  c.layers = {1, 1};
  c.planes = {16, 32};
  c.num_classes = 5;
  return c;
}

// One training step's input gradient and parameter gradients, concatenated.
std::vector<float> step_gradients(const Shape& input, bool forbid_winograd) {
  nn::init::manual_seed(3);
  nn::ResNet net(small_imagenet_net());
  net.set_input_grad(true);
  if (forbid_winograd)
    for (auto& [name, m] : net.named_modules())
      if (auto* conv = dynamic_cast<nn::Conv2d*>(m)) conv->set_winograd(false);
  const Tensor x = testing::random_tensor(input, 21);
  const Tensor y = net.forward(x);
  const Tensor dx = net.backward(testing::random_tensor(y.shape(), 22));
  std::vector<float> all(dx.values().begin(), dx.values().end());
  for (auto& [name, p] : net.named_parameters())
    all.insert(all.end(), p->grad.values().begin(), p->grad.values().end());
  return all;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(WinogradPolicy, FewValuesPerBatchNormChannelTrainWithoutWinograd) {
  // 64x64 -> stem 32 -> max-pool 16 -> layer2 8x8: 2 * 64 = 128 values per channel.
  const Shape few = {2, 3, 64, 64};
  EXPECT_TRUE(bitwise_equal(step_gradients(few, false), step_gradients(few, true)));
}

TEST(WinogradPolicy, ManyValuesPerBatchNormChannelMayUseIt) {
  // 8 * 64 = 512 values per channel in layer2: Winograd where oneDNN has it, so the
  // gradients differ from direct convolution's by rounding (which shows that the test
  // above can tell the two apart).
  const Shape many = {8, 3, 64, 64};
  const std::vector<float> allowed = step_gradients(many, false);
  const std::vector<float> direct = step_gradients(many, true);
  if (bitwise_equal(allowed, direct))
    GTEST_SKIP() << "oneDNN has no Winograd convolution on this CPU (it needs AVX-512)";
  double worst = 0, largest = 0;
  for (size_t i = 0; i < direct.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(allowed[i] - direct[i])));
    largest = std::max(largest, static_cast<double>(std::abs(direct[i])));
  }
  EXPECT_LT(worst, 1e-3 * largest);  // rounding, not a different computation
}

}  // namespace
}  // namespace resnet
