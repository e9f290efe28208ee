// Flatten: shapes as torch.nn.Flatten computes them, data order unchanged (row-major),
// backward the exact inverse reshape.

#include <gtest/gtest.h>

#include <sstream>

#include "resnet/core/error.h"
#include "resnet/nn/flatten.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

struct FlattenCase {
  Shape in;
  int64_t start, end;
  Shape out;  // what torch.nn.Flatten(start, end)(torch.zeros(in)).shape prints
  friend void PrintTo(const FlattenCase& p, std::ostream* os) { *os << p.name(); }
  std::string name() const {
    std::ostringstream s;
    s << "In";
    for (int64_t d : in) s << d << "x";
    s << "Start" << (start < 0 ? "M" : "") << (start < 0 ? -start : start) << "End"
      << (end < 0 ? "M" : "") << (end < 0 ? -end : end);
    return s.str();
  }
};

class FlattenTest : public ::testing::TestWithParam<FlattenCase> {};

TEST_P(FlattenTest, ShapeMatchesPyTorchAndDataIsUnchanged) {
  const FlattenCase p = GetParam();
  nn::Flatten flatten(p.start, p.end);
  flatten.train();
  Tensor x = testing::random_tensor(p.in, 1);
  Tensor y = flatten.forward(x);
  ASSERT_EQ(y.shape(), p.out) << p.name();
  // The reference: flattening a row-major tensor keeps every element at its flat index.
  testing::expect_close(y.reshape(x.shape()), x, 0, "forward " + p.name());

  Tensor dy = testing::random_tensor(p.out, 2);
  Tensor dx = flatten.backward(dy);
  ASSERT_EQ(dx.shape(), p.in) << p.name();
  testing::expect_close(dx.reshape(p.out), dy, 0, "diff_src " + p.name());
}

TEST_P(FlattenTest, GradientMatchesFiniteDifferences) {
  const FlattenCase p = GetParam();
  nn::Flatten flatten(p.start, p.end);
  flatten.train();
  Tensor x = testing::random_tensor(p.in, 3);
  testing::GradcheckOptions opt;
  opt.max_checks = 50;
  auto r = testing::gradcheck([&](const Tensor& v) { return flatten.forward(v).clone(); },
                              [&](const Tensor& dy) {
                                flatten.forward(x);
                                return flatten.backward(dy);
                              },
                              x, opt, "d/dx " + p.name());
  EXPECT_TRUE(r.ok()) << r.report();
}

INSTANTIATE_TEST_SUITE_P(
    FlattenOddShapes, FlattenTest,
    ::testing::Values(FlattenCase{{3, 5, 7, 9}, 1, -1, {3, 315}},  // torchvision's flatten
                      FlattenCase{{3, 5, 7, 9}, 0, -1, {945}},
                      FlattenCase{{3, 5, 7, 9}, -2, -1, {3, 5, 63}},
                      FlattenCase{{3, 5, 7, 9}, 1, 2, {3, 35, 9}},
                      FlattenCase{{3, 5, 7, 9}, 2, 2, {3, 5, 7, 9}},
                      FlattenCase{{3, 5, 7, 9}, 1, -3, {3, 5, 7, 9}},
                      FlattenCase{{2, 512, 1, 1}, 1, -1, {2, 512}},
                      FlattenCase{{4, 6}, 1, -1, {4, 6}}, FlattenCase{{11}, 0, -1, {11}}),
    [](const auto& info) { return info.param.name(); });

// [2, 2, 1, 2] holding 1..8 flattens from dim 1 to [2, 4]: row n is its 2*1*2 = 4
// elements in row-major order, [1 2 3 4; 5 6 7 8]. Backward of dy = [10..17] as [2, 4]
// gives the same 8 values back as [2, 2, 1, 2].
TEST(FlattenGolden, RowMajorOrder) {
  nn::Flatten flatten;
  flatten.train();
  Tensor y = flatten.forward(Tensor::from_vector({2, 2, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_FLOAT_EQ(y.f32()[0], 1.f);
  EXPECT_FLOAT_EQ(y.f32()[3], 4.f);
  EXPECT_FLOAT_EQ(y.f32()[4], 5.f);
  Tensor dx = flatten.backward(Tensor::from_vector({2, 4}, {10, 11, 12, 13, 14, 15, 16, 17}));
  ASSERT_EQ(dx.shape(), (Shape{2, 2, 1, 2}));
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(dx.f32()[i], float(10 + i)) << i;
}

TEST(FlattenPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::Flatten().to_string(), "Flatten(start_dim=1, end_dim=-1)");
  EXPECT_EQ(nn::Flatten(0, 2).to_string(), "Flatten(start_dim=0, end_dim=2)");
}

TEST(FlattenErrors, RefusesDimsThatDoNotFit) {
  // PyTorch: "flatten() has invalid args: start_dim cannot come after end_dim".
  EXPECT_THROW(nn::Flatten(2, 1), Error);
  EXPECT_THROW(nn::Flatten(-1, -2), Error);
  nn::Flatten flatten(1, -1);
  flatten.train();
  try {
    flatten.forward(Tensor({7}));  // dim 1 does not exist in a 1-D tensor
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Flatten(start_dim=1, end_dim=-1)"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[7]"), std::string::npos) << e.what();
  }
  // Mixed signs resolve only against the rank: on 4-D, (2, -3) is (2, 1).
  EXPECT_THROW(nn::Flatten(2, -3).forward(Tensor({2, 3, 4, 5})), Error);
  EXPECT_THROW(nn::Flatten(0, 4).forward(Tensor({2, 3, 4, 5})), Error);

  nn::Flatten fresh;
  EXPECT_THROW(fresh.backward(Tensor({2, 60})), Error);  // no forward yet
  flatten.forward(Tensor({2, 3, 4, 5}));
  EXPECT_THROW(flatten.backward(Tensor({2, 3, 4, 5})), Error);
  EXPECT_THROW(flatten.backward(Tensor({2, 59})), Error);
  EXPECT_NO_THROW(flatten.backward(Tensor({2, 60})));
}

}  // namespace
}  // namespace resnet
