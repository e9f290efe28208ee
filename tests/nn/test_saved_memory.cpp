// What training keeps for backward: a BN+ReLU keeps its input and its per-channel map,
// not its output too, and recomputes that output in backward. The recomputed output is
// the forward's bit for bit, so gradients are unchanged, exactly, whatever gamma is
// (zero, tiny, negative) and whatever the shape. A BN after a 1x1 convolution (a
// bottleneck's first, a projection shortcut) or after the ImageNet stem does not keep its
// input either: backward runs that convolution again, with the same bits as a result.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resnet/backend/batchnorm2d.h"
#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/init.h"
#include "resnet/nn/resnet.h"
#include "resnet/tensor/storage_pool.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::bitwise_equal;

// Gamma with a zero, a tiny, a negative and an ordinary channel, repeated.
Tensor awkward_gamma(int64_t c) {
  Tensor g({c});
  const float values[] = {0.f, 1e-30f, -0.7f, 1.3f, 1e-8f};
  for (int64_t i = 0; i < c; ++i) g.f32()[i] = values[i % 5];
  return g;
}

TEST(SavedMemory, ApplyRecomputesTheTrainingOutputBitForBit) {
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    for (int64_t c : {3, 16, 20, 35}) {
      for (bool relu : {false, true}) {
        Tensor x = backend::to_layout(testing::random_tensor({3, c, 5, 7}, 7, -3.f, 5.f), layout);
        Tensor mean({c}), var({c});
        backend::BatchNorm2dKernel k(1e-5);
        backend::BatchNormAffine affine;
        Tensor y = k.forward_train(x, awkward_gamma(c), testing::random_tensor({c}, 8), mean, var,
                                   relu, &affine);
        EXPECT_TRUE(bitwise_equal(k.apply(x, affine, relu), y))
            << "C=" << c << " relu=" << relu << " blocked=" << (layout == Layout::blocked16);
      }
    }
  }
}

TEST(SavedMemory, ApplyRejectsAMapOfAnotherWidth) {
  backend::BatchNorm2dKernel k(1e-5);
  Tensor x = testing::random_tensor({2, 4, 3, 3}, 1);
  Tensor mean({4}), var({4});
  backend::BatchNormAffine affine;
  k.forward_train(x, Tensor::full({4}, 1.f), Tensor({4}), mean, var, true, &affine);
  EXPECT_THROW(k.apply(testing::random_tensor({2, 5, 3, 3}, 1), affine, true), Error);
}

// A BN+ReLU that recomputes its output gives the gradients of one that keeps it.
TEST(SavedMemory, BatchNormReluBackwardFromItsInputEqualsTheKeptOutputs) {
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    const int64_t c = 21;
    Tensor x = backend::to_layout(testing::random_tensor({2, c, 3, 5}, 3, -2.f, 2.f), layout);
    Tensor dy = backend::to_layout(testing::random_tensor({2, c, 3, 5}, 4), layout);
    nn::BatchNorm2d kept(c), recomputed(c);
    for (auto* bn : {&kept, &recomputed}) {
      bn->set_fused_relu(true);
      bn->weight().value.copy_from(awkward_gamma(c));
      bn->bias().value.copy_from(testing::random_tensor({c}, 5));
    }
    recomputed.set_recompute_output(true);
    Tensor y0 = kept.forward(x), y1 = recomputed.forward(x);
    EXPECT_TRUE(bitwise_equal(y0, y1));
    EXPECT_TRUE(bitwise_equal(recomputed.output_for_backward(), y0));
    EXPECT_TRUE(bitwise_equal(kept.backward(dy), recomputed.backward(dy)));
    EXPECT_TRUE(bitwise_equal(kept.weight().grad, recomputed.weight().grad));
    EXPECT_TRUE(bitwise_equal(kept.bias().grad, recomputed.bias().grad));
  }
}

TEST(SavedMemory, OutputForBackwardNeedsAForwardThatKeptItsState) {
  nn::BatchNorm2d bn(4);
  bn.set_fused_relu(true);
  EXPECT_THROW(bn.output_for_backward(), Error);
}

struct Net {
  std::string name;
  nn::ResNetConfig config;
  // BNs whose input backward recomputes: the ImageNet stem's, each bottleneck's bn1 and
  // bn3, each 1x1 projection's.
  int recomputed_bn_inputs;
};

nn::ResNetConfig config(nn::ResNetConfig::Block block, nn::ResNetConfig::Stem stem,
                        bool zero_init) {
  nn::ResNetConfig c;
  c.block = block;
  c.stem = stem;
  c.layers = {2, 1};
  c.planes = {16, 32};
  c.num_classes = 5;
  c.zero_init_residual = zero_init;
  return c;
}

class SavedMemoryNet : public ::testing::TestWithParam<Net> {};

// One training step with every BN+ReLU recomputing its output and the BNs after 1x1 and
// stem convolutions recomputing their input, and one with every BN keeping both: the
// same input gradient and parameter gradients, bit for bit.
TEST_P(SavedMemoryNet, StepGradientsEqualThoseOfKeptOutputs) {
  auto make = [&] {
    nn::init::manual_seed(11);
    auto net = std::make_shared<nn::ResNet>(GetParam().config);
    net->set_input_grad(true);
    return net;
  };
  auto recomputing = make(), keeping = make();
  for (auto& [name, m] : keeping->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
      bn->set_recompute_output(false);
      bn->set_keeps_input(true);
    }
  int recomputed_inputs = 0;
  for (auto& [name, m] : recomputing->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) recomputed_inputs += !bn->keeps_input();
  EXPECT_EQ(recomputed_inputs, GetParam().recomputed_bn_inputs);
  const Tensor x = testing::random_tensor({4, 3, 37, 29}, 12);
  const size_t live_before = detail::pooled_storage_live_bytes();
  Tensor y0 = recomputing->forward(x);
  const size_t live_recomputing = detail::pooled_storage_live_bytes() - live_before;
  Tensor y1 = keeping->forward(x);
  const size_t live_keeping = detail::pooled_storage_live_bytes() - live_before - live_recomputing;
  ASSERT_TRUE(bitwise_equal(y0, y1));
#ifndef RESNET_SANITIZE
  // Under the sanitizers tensors come from malloc, not from the pool.
  EXPECT_LT(live_recomputing, live_keeping);
#else
  (void)live_keeping;
#endif
  const Tensor dy = testing::random_tensor(y0.shape(), 13);
  EXPECT_TRUE(bitwise_equal(recomputing->backward(dy), keeping->backward(dy)));
  auto a = recomputing->named_parameters(), b = keeping->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(bitwise_equal(a[i].second->grad, b[i].second->grad)) << a[i].first;
}

using Block = nn::ResNetConfig::Block;
using Stem = nn::ResNetConfig::Stem;
INSTANTIATE_TEST_SUITE_P(
    Blocks, SavedMemoryNet,
    ::testing::Values(
        Net{"bottleneck", config(Block::bottleneck, Stem::imagenet, false), 1 + 3 + 3 + 2},
        Net{"bottleneck_zero_init", config(Block::bottleneck, Stem::imagenet, true), 1 + 3 + 3 + 2},
        Net{"basic_cifar_stem", config(Block::basic, Stem::cifar, true), 1},
        Net{"plain", config(Block::plain, Stem::imagenet, false), 1}),
    [](const ::testing::TestParamInfo<Net>& info) { return info.param.name; });

}  // namespace
}  // namespace resnet
