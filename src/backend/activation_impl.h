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
};

}  // namespace resnet::backend
