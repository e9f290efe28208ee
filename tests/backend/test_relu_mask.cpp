// A ReLU's backward from its bit mask equals oneDNN's backward from the kept output, bit
// for bit: odd sizes (a last byte of fewer than 8 values), both layouts (blocked16 with
// padding channels), exact zeros and negative zeros in the output.

#include <gtest/gtest.h>

#include "resnet/backend/eltwise.h"
#include "resnet/backend/relu_mask.h"
#include "resnet/core/error.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::bitwise_equal;

TEST(ReluMask, BackwardFromTheBitsEqualsBackwardFromTheOutput) {
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    for (const Shape& shape : std::vector<Shape>{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 21, 4, 3}}) {
      Tensor x = testing::random_tensor(shape, 3, -1.f, 1.f);
      x.f32()[0] = 0.f;  // the kink: no gradient, in both
      if (x.numel() > 1) x.f32()[1] = -0.f;
      const Tensor y = backend::relu_forward(backend::to_layout(x, layout));
      const Tensor dy = backend::to_layout(testing::random_tensor(shape, 4), layout);
      const backend::ReluMask mask = backend::relu_mask(y);
      EXPECT_TRUE(bitwise_equal(backend::relu_backward(dy, mask), backend::relu_backward(dy, y)))
          << shape_str(shape) << (layout == Layout::blocked16 ? " blocked16" : " plain");
    }
  }
}

TEST(ReluMask, AGradientOfAnotherShapeIsRefused) {
  const backend::ReluMask mask = backend::relu_mask(testing::random_tensor({2, 3, 4, 4}, 1));
  EXPECT_THROW(backend::relu_backward(testing::random_tensor({2, 3, 4, 5}, 2), mask), Error);
}

}  // namespace
}  // namespace resnet
