// AdaptiveAvgPool2d against reference kernels and finite differences: the global (1, 1)
// case against ref::global_avgpool_*, every other output size against a naive oracle
// written here from PyTorch's definition of the windows.

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/nn/adaptive_avgpool2d.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

// Whether input index `in_i` of a dimension of size `in` lies in the window of output
// index `out_i` of size `out`: floor(out_i * in / out) <= in_i < ceil((out_i + 1) * in / out).
bool in_window(int64_t in_i, int64_t in, int64_t out_i, int64_t out) {
  const double lo = std::floor(double(out_i) * double(in) / double(out));
  const double hi = std::ceil(double(out_i + 1) * double(in) / double(out));
  return double(in_i) >= lo && double(in_i) < hi;
}

// Naive adaptive average pooling: for every output cell, scan the whole plane.
Tensor naive_forward(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  Tensor y({N, C, oh, ow});
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double sum = 0.0;
        int64_t count = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            if (in_window(h, H, i, oh) && in_window(w, W, j, ow)) {
              sum += x.f32()[nc * H * W + h * W + w];
              ++count;
            }
        y.f32()[(nc * oh + i) * ow + j] = static_cast<float>(sum / double(count));
      }
  return y;
}

// dL/dx[h, w] = sum over the windows holding (h, w) of dy / window size.
Tensor naive_backward(const Tensor& dy, const Shape& x_shape) {
  const int64_t N = x_shape[0], C = x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t oh = dy.dim(2), ow = dy.dim(3);
  Tensor dx(x_shape);
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        int64_t count = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) count += in_window(h, H, i, oh) && in_window(w, W, j, ow);
        const double share = double(dy.f32()[(nc * oh + i) * ow + j]) / double(count);
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            if (in_window(h, H, i, oh) && in_window(w, W, j, ow))
              dx.f32()[nc * H * W + h * W + w] += static_cast<float>(share);
      }
  return dx;
}

struct AdaptiveCase {
  int64_t n, c, h, w, oh, ow;
  friend void PrintTo(const AdaptiveCase& p, std::ostream* os) { *os << p.name(); }
  std::string name() const {
    std::ostringstream s;
    s << "N" << n << "C" << c << "H" << h << "W" << w << "To" << oh << "x" << ow;
    return s.str();
  }
  bool global() const { return oh == 1 && ow == 1; }
};

class AdaptiveAvgPool2dTest : public ::testing::TestWithParam<AdaptiveCase> {};

TEST_P(AdaptiveAvgPool2dTest, ForwardAndBackwardMatchReference) {
  const AdaptiveCase p = GetParam();
  nn::AdaptiveAvgPool2d pool(p.oh, p.ow);
  pool.train();
  Tensor x = testing::random_tensor({p.n, p.c, p.h, p.w}, 1);
  Tensor y = pool.forward(x);
  Tensor dy = testing::random_tensor({p.n, p.c, p.oh, p.ow}, 2);
  Tensor dx = pool.backward(dy);
  if (p.global()) {
    testing::expect_close(y, ref::global_avgpool_forward(x), 1e-5, "forward " + p.name());
    testing::expect_close(dx, ref::global_avgpool_backward(dy, x.shape()), 1e-6,
                          "diff_src " + p.name());
  }
  testing::expect_close(y, naive_forward(x, p.oh, p.ow), 1e-5, "forward (naive) " + p.name());
  testing::expect_close(dx, naive_backward(dy, x.shape()), 1e-5, "diff_src (naive) " + p.name());

  nn::AdaptiveAvgPool2d inference(p.oh, p.ow);
  inference.eval();
  testing::expect_close(inference.forward(x), y, 0, "inference forward " + p.name());
}

TEST_P(AdaptiveAvgPool2dTest, GradientMatchesFiniteDifferences) {
  const AdaptiveCase p = GetParam();
  nn::AdaptiveAvgPool2d pool(p.oh, p.ow);
  pool.train();
  Tensor x = testing::random_tensor({p.n, p.c, p.h, p.w}, 3);
  testing::GradcheckOptions opt;
  opt.max_checks = 150;
  auto r = testing::gradcheck([&](const Tensor& v) { return pool.forward(v); },
                              [&](const Tensor& dy) {
                                pool.forward(x);
                                return pool.backward(dy);
                              },
                              x, opt, "d/dx " + p.name());
  EXPECT_TRUE(r.ok()) << r.report();
}

INSTANTIATE_TEST_SUITE_P(
    AdaptiveAvgPool2dOddShapes, AdaptiveAvgPool2dTest,
    ::testing::Values(AdaptiveCase{3, 5, 7, 9, 1, 1},   // global, oneDNN
                      AdaptiveCase{2, 17, 7, 7, 1, 1},  // ResNet's last stage
                      AdaptiveCase{2, 3, 1, 1, 1, 1},   // 1x1 image
                      AdaptiveCase{2, 3, 4, 6, 2, 3},   // regular 2x2 windows, oneDNN
                      AdaptiveCase{3, 5, 7, 9, 3, 3},   // uneven rows, even columns
                      AdaptiveCase{2, 3, 5, 7, 4, 5},   // overlapping uneven windows
                      AdaptiveCase{1, 2, 2, 3, 3, 5}),  // output larger than input
    [](const auto& info) { return info.param.name(); });

// Global average of the 1x2x2x3 input [1..6; 7..12]: channel 0 is (1+2+...+6)/6 = 3.5,
// channel 1 is (7+...+12)/6 = 9.5. Backward of dy = [6, -12] gives 6/6 = 1 to every
// element of channel 0 and -12/6 = -2 to every element of channel 1.
TEST(AdaptiveAvgPool2dGolden, GlobalAverage) {
  nn::AdaptiveAvgPool2d pool(1, 1);
  pool.train();
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = float(i + 1);
  Tensor y = pool.forward(Tensor::from_vector({1, 2, 2, 3}, v));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_FLOAT_EQ(y.f32()[0], 3.5f);
  EXPECT_FLOAT_EQ(y.f32()[1], 9.5f);
  Tensor dx = pool.backward(Tensor::from_vector({1, 2, 1, 1}, {6, -12}));
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(dx.f32()[i], 1.f) << i;
  for (int i = 6; i < 12; ++i) EXPECT_FLOAT_EQ(dx.f32()[i], -2.f) << i;
}

// Width 5 to 3 (PyTorch: adaptive_avg_pool2d(arange(1, 6).view(1, 1, 1, 5), (1, 3)) is
// [1.5, 3, 4.5]): window j covers [floor(5j/3), ceil(5(j+1)/3)) = [0,2), [1,4), [3,5),
// so y = [(1+2)/2, (2+3+4)/3, (4+5)/2]. Backward of dy = [1, 1, 1]: each element gets
// 1/size of every window holding it: [1/2, 1/2+1/3, 1/3, 1/3+1/2, 1/2].
TEST(AdaptiveAvgPool2dGolden, UnevenOverlappingWindows) {
  nn::AdaptiveAvgPool2d pool(1, 3);
  pool.train();
  Tensor y = pool.forward(Tensor::from_vector({1, 1, 1, 5}, {1, 2, 3, 4, 5}));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 3}));
  EXPECT_FLOAT_EQ(y.f32()[0], 1.5f);
  EXPECT_FLOAT_EQ(y.f32()[1], 3.f);
  EXPECT_FLOAT_EQ(y.f32()[2], 4.5f);
  Tensor dx = pool.backward(Tensor::from_vector({1, 1, 1, 3}, {1, 1, 1}));
  const float expected[] = {0.5f, 0.5f + 1.f / 3, 1.f / 3, 1.f / 3 + 0.5f, 0.5f};
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(dx.f32()[i], expected[i]) << i;
}

TEST(AdaptiveAvgPool2dPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::AdaptiveAvgPool2d(1, 1).to_string(), "AdaptiveAvgPool2d(output_size=(1, 1))");
  EXPECT_EQ(nn::AdaptiveAvgPool2d(2, 3).to_string(), "AdaptiveAvgPool2d(output_size=(2, 3))");
  // nn.AdaptiveAvgPool2d(7) keeps the int.
  EXPECT_EQ(nn::AdaptiveAvgPool2d(7).to_string(), "AdaptiveAvgPool2d(output_size=7)");
  EXPECT_EQ(nn::AdaptiveAvgPool2d(7).out_w(), 7);
}

TEST(AdaptiveAvgPool2dErrors, RefusesBadArgumentsAndInputs) {
  EXPECT_THROW(nn::AdaptiveAvgPool2d(0, 1), Error);
  EXPECT_THROW(nn::AdaptiveAvgPool2d(-1), Error);
  nn::AdaptiveAvgPool2d pool(1, 1);
  pool.train();
  try {
    pool.forward(Tensor({5, 7, 9}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AdaptiveAvgPool2d(output_size=(1, 1))"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[5, 7, 9]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.forward(Tensor({2, 3, 0, 4})), Error);
  nn::AdaptiveAvgPool2d fresh(1, 1);
  EXPECT_THROW(fresh.backward(Tensor({1, 1, 1, 1})), Error);  // no forward yet
  pool.forward(Tensor({2, 3, 5, 5}));
  EXPECT_THROW(pool.backward(Tensor({2, 3, 5, 5})), Error);
  EXPECT_THROW(pool.backward(Tensor({2, 4, 1, 1})), Error);
  EXPECT_NO_THROW(pool.backward(Tensor({2, 3, 1, 1})));
}

}  // namespace
}  // namespace resnet
