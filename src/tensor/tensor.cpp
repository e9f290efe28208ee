#include "resnet/tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "resnet/core/error.h"
#include "resnet/tensor/storage_pool.h"

namespace resnet {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::bf16:
      return 2;
    case DType::i8:
      return 1;
    case DType::u8:
      return 1;
    case DType::i64:
      return 8;
  }
  return 0;
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::i8:
      return "i8";
    case DType::u8:
      return "u8";
    case DType::i64:
      return "i64";
  }
  return "?";
}

int64_t channel_block(Layout layout) {
  switch (layout) {
    case Layout::blocked16:
      return 16;
    case Layout::blocked8:
      return 8;
    case Layout::blocked4:
      return 4;
    case Layout::plain:
    case Layout::channels_last:
      break;
  }
  return 1;
}

std::string layout_name(Layout layout) {
  switch (layout) {
    case Layout::plain:
      return "plain";
    case Layout::blocked16:
      return "blocked16";
    case Layout::blocked8:
      return "blocked8";
    case Layout::blocked4:
      return "blocked4";
    case Layout::channels_last:
      return "channels_last";
  }
  return "?";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    RESNET_CHECK(d >= 0, "tensor: expected non-negative dimensions, got " << shape_str(shape));
    RESNET_CHECK(d == 0 || n <= std::numeric_limits<int64_t>::max() / d,
                 "tensor: shape " << shape_str(shape) << " overflows 64-bit element count");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {
constexpr size_t kAlignment = 64;

}  // namespace

Tensor::Storage::Storage(size_t bytes, bool zero) : nbytes(bytes) {
#ifndef RESNET_SANITIZE
  // Large blocks come from the storage pool (storage_pool.h); under the sanitizers
  // everything comes from malloc, so that AddressSanitizer sees every use after free.
  if (bytes >= detail::kPooledStorageMinBytes) {
    detail::PooledBlock block = detail::acquire_pooled_storage(bytes);
    data = block.data;
    pooled = true;
    if (zero && !block.zeroed) std::memset(data, 0, bytes);
    return;
  }
#endif
  size_t rounded = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  data = std::aligned_alloc(kAlignment, rounded);
  RESNET_CHECK(data != nullptr, "tensor: cannot allocate " << bytes << " bytes (out of memory)");
#ifdef RESNET_SANITIZE
  // Under the sanitizers an uninitialized tensor is filled with NaNs, so that a kernel
  // that leaves part of its output unwritten shows up in the tests' comparisons.
  std::memset(data, zero ? 0 : 0xff, rounded);
#else
  if (zero) std::memset(data, 0, rounded);
#endif
}

Tensor::Storage::~Storage() {
  if (pooled)
    detail::release_pooled_storage(data, nbytes);
  else
    std::free(data);
}

Tensor::Tensor(Shape shape, DType dtype, Layout layout)
    : Tensor(std::move(shape), dtype, layout, Uninitialized{}) {
  // Zero-filled, as documented: fresh pool pages are zero already.
  storage_ = std::make_shared<Storage>(nbytes(), true);
}

Tensor Tensor::empty(Shape shape, DType dtype, Layout layout) {
  Tensor t(std::move(shape), dtype, layout, Uninitialized{});
  t.storage_ = std::make_shared<Storage>(t.nbytes(), false);
  return t;
}

Tensor::Tensor(Shape shape, DType dtype, Layout layout, Uninitialized)
    : shape_(std::move(shape)),
      numel_(shape_numel(shape_)),
      storage_numel_(numel_),
      dtype_(dtype),
      layout_(layout) {
  if (layout != Layout::plain) {
    RESNET_CHECK(shape_.size() == 4 && dtype != DType::i64,
                 "tensor: " << layout_name(layout)
                            << " layout needs a 4-D f32, bf16 or int8 tensor, got "
                            << dtype_name(dtype) << shape_str());
    const int64_t block = channel_block(layout);
    storage_numel_ = shape_[0] * ((shape_[1] + block - 1) / block * block) * shape_[2] * shape_[3];
  }
}

void* Tensor::raw() {
  if (!storage_) return nullptr;
  storage_->version.fetch_add(1, std::memory_order_relaxed);
  return storage_->data;
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  RESNET_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
               "tensor: expected " << t.numel() << " values for shape " << t.shape_str() << ", got "
                                   << values.size());
  std::copy(values.begin(), values.end(), t.f32());
  return t;
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  int j = i < 0 ? i + r : i;
  RESNET_CHECK(j >= 0 && j < r,
               "tensor: dimension " << i << " out of range for shape " << shape_str());
  return shape_[j];
}

float* Tensor::f32() {
  RESNET_CHECK(dtype_ == DType::f32, "tensor: expected dtype f32, got " << dtype_name(dtype_));
  return static_cast<float*>(raw());
}
const float* Tensor::f32() const {
  RESNET_CHECK(dtype_ == DType::f32, "tensor: expected dtype f32, got " << dtype_name(dtype_));
  return static_cast<const float*>(raw());
}

int64_t* Tensor::i64() {
  RESNET_CHECK(dtype_ == DType::i64, "tensor: expected dtype i64, got " << dtype_name(dtype_));
  return static_cast<int64_t*>(raw());
}
const int64_t* Tensor::i64() const {
  RESNET_CHECK(dtype_ == DType::i64, "tensor: expected dtype i64, got " << dtype_name(dtype_));
  return static_cast<const int64_t*>(raw());
}

std::span<float> Tensor::values() {
  return {f32(), static_cast<size_t>(numel_)};
}
std::span<const float> Tensor::values() const {
  return {f32(), static_cast<size_t>(numel_)};
}

Tensor Tensor::view_as(DType dtype) const {
  RESNET_CHECK(dtype_size(dtype) == dtype_size(dtype_),
               "tensor: cannot view " << dtype_name(dtype_) << " as " << dtype_name(dtype));
  Tensor t = *this;
  t.dtype_ = dtype;
  return t;
}

void Tensor::attach_rounded(Tensor rounded) const {
  RESNET_CHECK(defined() && dtype_ == DType::f32 && rounded.dtype() != DType::f32 &&
                   rounded.shape_ == shape_ && rounded.layout_ == layout_,
               "tensor: expected a rounding of this f32" << shape_str() << " in its layout, got "
                                                         << dtype_name(rounded.dtype())
                                                         << rounded.shape_str());
  storage_->rounded = std::make_shared<const Tensor>(std::move(rounded));
  storage_->rounded_version = version();
}

Tensor Tensor::rounded(DType dtype) const {
  if (!defined() || dtype_ != DType::f32 || !storage_->rounded) return {};
  const Tensor& r = *storage_->rounded;
  if (r.dtype_ != dtype || r.shape_ != shape_ || r.layout_ != layout_ ||
      storage_->rounded_version != version())
    return {};
  return r;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t(shape_, dtype_, layout_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  RESNET_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_ && src.layout_ == layout_,
               "tensor: copy expected " << dtype_name(dtype_) << shape_str() << ", got "
                                        << dtype_name(src.dtype_) << src.shape_str());
  std::memcpy(raw(), src.raw(), nbytes());
}

void Tensor::fill(float value) {
  std::fill_n(f32(), numel_, value);
}

Tensor Tensor::reshape(Shape shape) const {
  RESNET_CHECK(is_plain(), "tensor: reshape needs a plain tensor");
  RESNET_CHECK(shape_numel(shape) == numel_,
               "tensor: cannot reshape " << shape_str() << " to " << resnet::shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

float max_abs(const Tensor& t) {
  float m = 0.f;
  for (float v : t.values()) m = std::max(m, std::fabs(v));
  return m;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  RESNET_CHECK(a.shape() == b.shape(), "max_abs_diff: expected equal shapes, got "
                                           << a.shape_str() << " and " << b.shape_str());
  float m = 0.f;
  auto av = a.values(), bv = b.values();
  for (size_t i = 0; i < av.size(); ++i) {
    float d = std::fabs(av[i] - bv[i]);
    if (std::isnan(d)) return std::numeric_limits<float>::quiet_NaN();
    m = std::max(m, d);
  }
  return m;
}

}  // namespace resnet
