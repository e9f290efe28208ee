#pragma once
// Private to src/backend/: what an Activation holds, and how the primitives that take
// and produce activations reach it.

#include "dnnl_context.h"
#include "resnet/backend/activation.h"

namespace resnet::backend {

struct Activation::Impl {
  detail::memory mem;
  // Borrowed memory belongs to a caller's tensor and must never be written.
  bool borrowed = false;
  Tensor keep_alive;
  // The buffer behind `mem` when it came from a pool (returned there on destruction).
  std::shared_ptr<void> buffer;
  // int8 activations: real = quantized / scale. 1 for f32 and bf16.
  float scale = 1.f;
  // An activation that reinterprets another's buffer (an int8 residual whose bytes
  // become a convolution's output) keeps that one alive.
  std::shared_ptr<Impl> alias_of;
};

struct ActivationAccess {
  static Activation::Impl* impl(const Activation& a) { return a.impl_.get(); }
  static const detail::memory& mem(const Activation& a);
  // A new activation with memory of `desc`, from `pool` when given.
  static Activation allocate(const detail::memory::desc& desc, ActivationPool* pool);
  // Wraps existing memory (already owned elsewhere, e.g. a reorder's result).
  static Activation adopt_memory(const detail::memory& m);
  static bool borrowed(const Activation& a) { return a.impl_ && a.impl_->borrowed; }
  // True when `a` is the only handle on its memory: nobody else can read it any more.
  static bool sole_owner(const Activation& a) { return a.impl_.use_count() == 1; }
  static float scale(const Activation& a) { return a.impl_ ? a.impl_->scale : 1.f; }
  static void set_scale(Activation& a, float scale) { a.impl_->scale = scale; }
  // `a`'s buffer seen through `desc` (same layout, possibly another element type of the
  // same size).
  static Activation alias(Activation a, const detail::memory::desc& desc);
  // `src` converted to `desc` and scale `scale` (1 for f32/bf16): itself when it already
  // is, else new memory (a reorder, scaled when the scales differ).
  static detail::memory converted(const Activation& src, const detail::memory::desc& desc,
                                  float scale);
  // Writes `src`, converted to scale `scale`, into existing memory `dst`.
  static void convert_into(const Activation& src, const detail::memory& dst, float scale);
};

}  // namespace resnet::backend
