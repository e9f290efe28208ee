#pragma once
// What the reference kernels' tests share: goldens, error messages and gradient checks.

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet::reftest {

using testing::expect_close;
using testing::gradcheck;
using testing::GradcheckOptions;
using testing::GradcheckResult;
using testing::random_tensor;

inline Tensor values(Shape shape, std::vector<float> v) {
  return Tensor::from_vector(shape, v);
}

// Goldens are small integers or exact binary fractions, so they must match to rounding.
inline void expect_golden(const Tensor& actual, Shape shape, std::vector<float> expected,
                          const std::string& what) {
  expect_close(actual, Tensor::from_vector(std::move(shape), expected), 1e-6, what);
}

// `f` must throw resnet::Error whose message contains `message`.
inline void expect_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected resnet::Error containing \"" << message << "\", got no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos)
        << "expected \"" << message << "\" in \"" << e.what() << "\"";
  }
}

inline void expect_gradcheck_ok(const testing::ForwardFn& forward,
                                const testing::BackwardFn& backward, const Tensor& x,
                                const GradcheckOptions& options, const std::string& what) {
  const GradcheckResult r = gradcheck(forward, backward, x, options, what);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_GT(r.checked, 0) << r.report();
}

// Linear maps (conv, linear, pooling, add) have no truncation error, so a large step only
// shrinks the f32 rounding noise in L(x +- h).
inline GradcheckOptions linear_options() {
  GradcheckOptions o;
  o.eps = 1e-2;
  return o;
}

}  // namespace resnet::reftest
