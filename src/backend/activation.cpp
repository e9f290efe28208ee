#include "resnet/backend/activation.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "activation_impl.h"

namespace resnet::backend {

using namespace detail;

struct ActivationPool::State {
  std::mutex mutex;
  // Free buffers by capacity. A request takes the smallest free buffer that holds it, if
  // that wastes at most half of it: activations of one network come in a few sizes, and
  // a buffer serves the smaller ones in between.
  std::multimap<size_t, void*> free_buffers;
  size_t allocated = 0;
  ~State() {
    for (auto& [capacity, p] : free_buffers) std::free(p);
  }
};

ActivationPool::ActivationPool() : state_(std::make_shared<State>()) {}
ActivationPool::~ActivationPool() = default;

size_t ActivationPool::bytes_allocated() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->allocated;
}

Activation::Activation() = default;
Activation::~Activation() = default;
Activation::Activation(const Activation&) = default;
Activation& Activation::operator=(const Activation&) = default;
// Moves matter: a value handed over for the last time must leave no reference behind,
// or the fused residual add could not reuse its buffer.
Activation::Activation(Activation&&) noexcept = default;
Activation& Activation::operator=(Activation&&) noexcept = default;

Activation Activation::borrow(const Tensor& plain) {
  RESNET_CHECK(plain.defined() && plain.is_plain() && plain.dtype() == DType::f32 &&
                   (plain.rank() == 4 || plain.rank() == 2),
               "activation: expected a plain f32 tensor of rank 4 or 2, got "
                   << (plain.defined() ? plain.shape_str() : std::string("nothing")));
  Activation a;
  a.impl_ = std::make_shared<Impl>();
  a.impl_->mem = wrap(plain);
  a.impl_->borrowed = true;
  a.impl_->keep_alive = plain;
  return a;
}

Tensor Activation::to_tensor() const {
  RESNET_CHECK(impl_ != nullptr, "activation: empty");
  Tensor t(shape());
  guarded("activation", [&] { ActivationAccess::convert_into(*this, wrap(t), 1.f); });
  return t;
}

Shape Activation::shape() const {
  RESNET_CHECK(impl_ != nullptr, "activation: empty");
  return impl_->mem.get_desc().dims();
}

const memory& ActivationAccess::mem(const Activation& a) {
  RESNET_CHECK(a.impl_ != nullptr, "activation: empty");
  return a.impl_->mem;
}

Activation ActivationAccess::allocate(const memory::desc& desc, ActivationPool* pool) {
  Activation a;
  a.impl_ = std::make_shared<Activation::Impl>();
  if (pool == nullptr) {
    a.impl_->mem = memory(desc, engine());
    return a;
  }
  const size_t size = (desc.get_size() + 63) / 64 * 64;
  std::shared_ptr<ActivationPool::State> state = pool->state_;
  void* data = nullptr;
  size_t capacity = size;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    auto it = state->free_buffers.lower_bound(size);
    if (it != state->free_buffers.end() && it->first <= 2 * size) {
      capacity = it->first;
      data = it->second;
      state->free_buffers.erase(it);
    }
  }
  if (data == nullptr) {
    data = std::aligned_alloc(64, size);
    RESNET_CHECK(data != nullptr, "activation: out of memory allocating " << size << " bytes");
    std::lock_guard<std::mutex> lock(state->mutex);
    state->allocated += size;
  }
  // The deleter hands the buffer back while the pool lives, and frees it after.
  std::weak_ptr<ActivationPool::State> weak = state;
  a.impl_->buffer = std::shared_ptr<void>(data, [weak, capacity](void* p) {
    if (auto s = weak.lock()) {
      std::lock_guard<std::mutex> lock(s->mutex);
      s->free_buffers.emplace(capacity, p);
    } else {
      std::free(p);
    }
  });
  a.impl_->mem = memory(desc, engine(), data);
  return a;
}

Activation ActivationAccess::alias(Activation a, const memory::desc& desc) {
  Activation out;
  out.impl_ = std::make_shared<Activation::Impl>();
  out.impl_->mem = memory(desc, engine(), a.impl_->mem.get_data_handle());
  out.impl_->alias_of = std::move(a.impl_);
  return out;
}

void ActivationAccess::convert_into(const Activation& src, const memory& dst, float scale) {
  const float factor = scale / ActivationAccess::scale(src);
  if (factor == 1.f)
    reorder_into(mem(src), dst);
  else
    reorder_scaled(mem(src), dst, 0, {factor});
}

memory ActivationAccess::converted(const Activation& src, const memory::desc& desc, float scale) {
  const memory& m = mem(src);
  if (m.get_desc() == desc && ActivationAccess::scale(src) == scale) return m;
  memory out(desc, engine());
  convert_into(src, out, scale);
  return out;
}

Activation ActivationAccess::adopt_memory(const memory& m) {
  Activation a;
  a.impl_ = std::make_shared<Activation::Impl>();
  a.impl_->mem = m;
  return a;
}

}  // namespace resnet::backend
