#pragma once
// Activation: an inference-time tensor in whatever layout and precision the oneDNN
// primitive that produced it chose (nChw16c f32, nChw16c bf16, nhwc u8, ...). Compiled
// graphs pass activations from one primitive to the next, so that a blocked layout
// survives from convolution to convolution with no reorder between them.
//
// ActivationPool: a buffer cache for activations. A buffer goes back to its pool when the
// last activation using it dies, and the next activation that fits takes it,
// so a compiled graph stops allocating (and page-faulting) after its first run and holds
// only as many buffers as are live at once.

#include <memory>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

class ActivationPool {
 public:
  ActivationPool();
  ~ActivationPool();
  ActivationPool(const ActivationPool&) = delete;
  ActivationPool& operator=(const ActivationPool&) = delete;

  // Bytes of all buffers this pool has allocated (in use or free).
  size_t bytes_allocated() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  friend struct ActivationAccess;
};

class Activation {
 public:
  Activation();
  ~Activation();
  Activation(const Activation&);
  Activation& operator=(const Activation&);
  Activation(Activation&&) noexcept;
  Activation& operator=(Activation&&) noexcept;

  // Borrows a plain NCHW (or [N, C]) f32 tensor (no copy); it is never written through.
  static Activation borrow(const Tensor& plain);
  // Copies the activation out into a plain f32 tensor.
  Tensor to_tensor() const;
  Shape shape() const;
  bool empty() const { return impl_ == nullptr; }

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  friend struct ActivationAccess;
};

}  // namespace resnet::backend
