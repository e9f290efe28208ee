#pragma once
// Inference convolutions with everything that follows them fused in, running on
// activations that stay in oneDNN's blocked layout from one convolution to the next:
//   dst = relu?(conv(src, weight) + bias + residual?)
// The residual add and the ReLU are oneDNN post-ops (sum, eltwise), so neither costs a
// pass over memory of its own. Weights are packed into the primitive's layout once per
// input shape and repacked only when the weight tensors change (Tensor::version).

#include <memory>

#include "resnet/backend/conv2d.h"
#include "resnet/tensor/tensor.h"

namespace resnet::backend {

// An activation in whatever layout the convolution that produced it chose.
class Activation {
 public:
  Activation();
  ~Activation();
  Activation(const Activation&);
  Activation& operator=(const Activation&);

  // Borrows a plain NCHW tensor (no copy); the tensor must outlive the activation.
  static Activation borrow(const Tensor& plain);
  // Copies the activation out into a plain NCHW tensor.
  Tensor to_tensor() const;
  Shape shape() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  friend class FusedConv2d;
};

struct FusedConv2dConfig {
  Conv2dConfig conv;          // conv.bias is ignored: the fused conv always has a bias
  bool add_residual = false;  // add a residual activation of the output's shape
  bool relu = false;          // ReLU after the (optional) add
};

class FusedConv2d {
 public:
  explicit FusedConv2d(const FusedConv2dConfig& config);
  ~FusedConv2d();
  FusedConv2d(const FusedConv2d&) = delete;
  FusedConv2d& operator=(const FusedConv2d&) = delete;

  // weight [OC, IC/groups, KH, KW], bias [OC]. The tensors are kept by reference
  // (shared storage) and repacked when their version changes.
  void set_weights(const Tensor& weight, const Tensor& bias);
  // `src` converted into the layout this convolution reads (itself when it already is),
  // so that several convolutions reading one input convert it once.
  Activation adopt(const Activation& src);
  // `residual` (required iff add_residual) is consumed: the output may be written
  // into its buffer.
  Activation run(const Activation& src, Activation residual = Activation());

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
