// MaxPool2d against the naive reference kernel and finite differences, on odd shapes.

#include <gtest/gtest.h>

#include <sstream>

#include "resnet/core/error.h"
#include "resnet/nn/maxpool2d.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

struct PoolCase {
  int64_t n, c, h, w, k, stride, pad;
  friend void PrintTo(const PoolCase& p, std::ostream* os) { *os << p.name(); }
  std::string name() const {
    std::ostringstream s;
    s << "N" << n << "C" << c << "H" << h << "W" << w << "K" << k << "S" << stride << "P" << pad;
    return s.str();
  }
};

class MaxPool2dTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPool2dTest, ForwardAndBackwardMatchReference) {
  const PoolCase p = GetParam();
  nn::MaxPool2d pool(p.k, p.stride, p.pad);
  pool.train();
  Tensor x = testing::random_tensor({p.n, p.c, p.h, p.w}, 1);
  Tensor y = pool.forward(x);
  // Max pooling picks an element: no rounding, so exact.
  testing::expect_close(y, ref::maxpool2d_forward(x, p.k, p.stride, p.pad), 0,
                        "forward " + p.name());
  Tensor dy = testing::random_tensor(y.shape(), 2);
  testing::expect_close(pool.backward(dy), ref::maxpool2d_backward(dy, x, p.k, p.stride, p.pad),
                        1e-6, "diff_src " + p.name());
}

TEST_P(MaxPool2dTest, InferenceForwardMatchesReference) {
  const PoolCase p = GetParam();
  nn::MaxPool2d pool(p.k, p.stride, p.pad);
  pool.eval();
  Tensor x = testing::random_tensor({p.n, p.c, p.h, p.w}, 3);
  testing::expect_close(pool.forward(x), ref::maxpool2d_forward(x, p.k, p.stride, p.pad), 0,
                        "inference forward " + p.name());
  // An inference forward keeps nothing, so there is nothing to differentiate.
  EXPECT_THROW(pool.backward(Tensor(ref::maxpool2d_forward(x, p.k, p.stride, p.pad).shape())),
               Error);
}

TEST_P(MaxPool2dTest, GradientMatchesFiniteDifferences) {
  const PoolCase p = GetParam();
  nn::MaxPool2d pool(p.k, p.stride, p.pad);
  pool.train();
  Tensor x = testing::random_tensor({p.n, p.c, p.h, p.w}, 4);
  testing::GradcheckOptions opt;
  opt.max_checks = 200;
  auto r = testing::gradcheck([&](const Tensor& v) { return pool.forward(v); },
                              [&](const Tensor& dy) {
                                pool.forward(x);
                                return pool.backward(dy);
                              },
                              x, opt, "d/dx " + p.name());
  EXPECT_TRUE(r.ok()) << r.report();
}

INSTANTIATE_TEST_SUITE_P(
    MaxPool2dOddShapes, MaxPool2dTest,
    ::testing::Values(PoolCase{3, 5, 7, 9, 3, 2, 1},  // torchvision stem
                      PoolCase{2, 3, 8, 8, 2, 2, 0}, PoolCase{2, 4, 9, 7, 3, 1, 1},
                      PoolCase{1, 3, 11, 10, 3, 2, 0}, PoolCase{2, 2, 5, 6, 5, 3, 2},
                      PoolCase{2, 3, 4, 5, 4, 1, 2}, PoolCase{3, 5, 7, 9, 1, 2, 0},
                      PoolCase{1, 17, 13, 13, 3, 2, 1}),
    [](const auto& info) { return info.param.name(); });

// One module, two input shapes in turn: each shape gets its own cached plan and the
// backward uses the workspace of the latest forward.
TEST(MaxPool2dShapes, AlternatingShapesStayCorrect) {
  nn::MaxPool2d pool(3, 2, 1);
  pool.train();
  for (int round = 0; round < 2; ++round) {
    for (Shape s : {Shape{2, 3, 7, 9}, Shape{1, 5, 6, 5}}) {
      Tensor x = testing::random_tensor(s, 10 + round);
      Tensor y = pool.forward(x);
      testing::expect_close(y, ref::maxpool2d_forward(x, 3, 2, 1), 0, "forward " + shape_str(s));
      Tensor dy = testing::random_tensor(y.shape(), 20 + round);
      testing::expect_close(pool.backward(dy), ref::maxpool2d_backward(dy, x, 3, 2, 1), 1e-6,
                            "backward " + shape_str(s));
    }
  }
}

// MaxPool2d follows ReLU in torchvision's stem, so windows full of tied zeros are the
// common case: each tie must send its gradient to the first maximum in row-major order,
// as PyTorch does (and the reference kernel), not to another or to all of them.
TEST(MaxPool2dTies, GradientGoesToTheFirstMaximum) {
  for (int64_t k : {2, 3}) {
    nn::MaxPool2d pool(k, 2, k / 2);
    pool.train();
    Tensor x = testing::random_tensor({2, 3, 9, 8}, 30);
    for (float& v : x.values()) v = v < 0.3f ? 0.f : (v < 0.6f ? 0.5f : v);  // ties at 0, 0.5
    Tensor y = pool.forward(x);
    testing::expect_close(y, ref::maxpool2d_forward(x, k, 2, k / 2), 0, "ties forward");
    Tensor dy = testing::random_tensor(y.shape(), 31);
    testing::expect_close(pool.backward(dy), ref::maxpool2d_backward(dy, x, k, 2, k / 2), 1e-6,
                          "ties backward K" + std::to_string(k));
  }
}

// All-zero 4x4 image, kernel 3, stride 2, padding 1: every window is a tie of zeros, and
// window (i, j) starts at row 2i-1, column 2j-1, so its first real element is
// (max(2i-1, 0), max(2j-1, 0)) = (0,0), (0,1), (1,0), (1,1). PyTorch 1.13's
// max_pool2d(zeros(1,1,4,4), 3, 2, 1).backward([1 2; 3 4]) gives exactly
// [1 2 0 0; 3 4 0 0; 0 0 0 0; 0 0 0 0].
TEST(MaxPool2dGolden, AllTiedZerosMatchPyTorch) {
  nn::MaxPool2d pool(3, 2, 1);
  pool.train();
  Tensor y = pool.forward(Tensor({1, 1, 4, 4}));
  EXPECT_EQ(max_abs(y), 0.f);
  Tensor dx = pool.backward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(std::vector<float>(dx.values().begin(), dx.values().end()),
            (std::vector<float>{1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

// kernel 3, stride 2, padding 1 on the 3x3 image
//   1 5 2
//   7 3 9
//   4 8 6
// OH = OW = floor((3 + 2 - 3) / 2) + 1 = 2. Window (i, j) covers rows 2i-1..2i+1 and
// columns 2j-1..2j+1, the padding never winning:
//   (0,0): {1,5,7,3} -> 7 at (1,0)    (0,1): {5,2,3,9} -> 9 at (1,2)
//   (1,0): {7,3,4,8} -> 8 at (2,1)    (1,1): {3,9,8,6} -> 9 at (1,2)
// so y = [7 9; 8 9]. Backward with dy = [1 2; 3 4]: (1,0) gets 1, (2,1) gets 3, and (1,2)
// won two overlapping windows so it gets 2 + 4 = 6; every other element gets 0.
TEST(MaxPool2dGolden, OverlappingWindowsWithPadding) {
  nn::MaxPool2d pool(3, 2, 1);
  pool.train();
  Tensor x = Tensor::from_vector({1, 1, 3, 3}, {1, 5, 2, 7, 3, 9, 4, 8, 6});
  Tensor y = pool.forward(x);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(std::vector<float>(y.values().begin(), y.values().end()),
            (std::vector<float>{7, 9, 8, 9}));
  Tensor dx = pool.backward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(std::vector<float>(dx.values().begin(), dx.values().end()),
            (std::vector<float>{0, 0, 0, 1, 0, 6, 0, 3, 0}));
}

TEST(MaxPool2dPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::MaxPool2d(3, 2, 1).to_string(),
            "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  // stride defaults to kernel_size, as torch.nn.MaxPool2d(2) prints it.
  EXPECT_EQ(nn::MaxPool2d(2).to_string(),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
}

TEST(MaxPool2dErrors, RefusesBadArgumentsAndInputs) {
  // PyTorch: "pad should be at most half of kernel size".
  try {
    nn::MaxPool2d(3, 2, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MaxPool2d(kernel_size=3, stride=2, padding=2)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("at most half"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::MaxPool2d(0), Error);
  EXPECT_THROW(nn::MaxPool2d(3, 0), Error);
  EXPECT_THROW(nn::MaxPool2d(3, 1, -1), Error);

  nn::MaxPool2d pool(3, 2, 1);
  pool.train();
  try {
    pool.forward(Tensor({5, 7, 9}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MaxPool2d(kernel_size=3, stride=2, padding=1)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[5, 7, 9]"), std::string::npos) << e.what();
  }
  // 3x3 kernel without padding needs at least 3x3.
  EXPECT_THROW(nn::MaxPool2d(3, 1, 0).forward(Tensor({1, 1, 2, 5})), Error);
  EXPECT_THROW(pool.forward(Tensor({0, 3, 7, 9})), Error);

  nn::MaxPool2d fresh(3, 2, 1);
  EXPECT_THROW(fresh.backward(Tensor({1, 1, 2, 2})), Error);  // no forward yet
  pool.forward(testing::random_tensor({2, 3, 7, 9}, 5));      // output [2, 3, 4, 5]
  EXPECT_THROW(pool.backward(Tensor({2, 3, 4, 4})), Error);
  EXPECT_NO_THROW(pool.backward(Tensor({2, 3, 4, 5})));
}

}  // namespace
}  // namespace resnet
