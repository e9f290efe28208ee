#pragma once
// Tensor: a shape, a dtype and 64-byte aligned storage. Copies share storage, like
// PyTorch; clone() copies data.
//
// Tensor is the one memory type of the library: training's activations, gradients and
// parameters, and a compiled model's activations (f32, bf16 or int8) are all Tensors,
// and all large ones come from one storage pool (storage_pool.h).
//
// Layout: plain tensors are dense and row-major (NCHW for images); every public
// boundary (files, the command line, module inputs and outputs a user sees) is plain.
// Inside a network, activations may be stored as oneDNN's kernels read them, so that
// convolutions, batch norm, pools and element-wise ops pass them on without reorders:
//   blocked16:     nChw16c (aBcd16b), channels in blocks of 16, the last block
//                  zero-padded (training, and f32/bf16 inference);
//   blocked8, blocked4: the same with blocks of 8 and 4 (oneDNN's choice for AVX2
//                  kernels and for grouped convolutions of few channels per group);
//   channels_last: NHWC (acdb), what oneDNN's int8 and brgemm kernels read.
// The shape stays the logical [N, C, H, W]; only the storage order differs.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace resnet {

using Shape = std::vector<int64_t>;

enum class DType { f32, bf16, i8, u8, i64 };
enum class Layout { plain, blocked16, blocked8, blocked4, channels_last };
// The channel block of a blocked layout (16, 8 or 4); 1 for the others.
int64_t channel_block(Layout layout);
// "plain", "blocked16", ..., "channels_last".
std::string layout_name(Layout layout);

// Bytes per element of `dtype`.
size_t dtype_size(DType dtype);
// "f32", "bf16", "i8", "u8", "i64".
std::string dtype_name(DType dtype);
// Number of elements of `shape` (1 for a scalar), checked against overflow.
int64_t shape_numel(const Shape& shape);
// "[3, 5, 7, 9]".
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given shape.
  explicit Tensor(Shape shape, DType dtype = DType::f32, Layout layout = Layout::plain);

  // A tensor whose storage is not initialized, for outputs that a kernel writes in full
  // (every element, and a blocked tensor's padding channels). Saves the zero-fill of
  // every activation and gradient of a training step.
  static Tensor empty(Shape shape, DType dtype = DType::f32, Layout layout = Layout::plain);
  static Tensor zeros(Shape shape, DType dtype = DType::f32) {
    return Tensor(std::move(shape), dtype);
  }
  static Tensor full(Shape shape, float value);
  // A tensor holding `values`, with `shape` (numel must match).
  static Tensor from_vector(Shape shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Layout layout() const { return layout_; }
  bool is_plain() const { return layout_ == Layout::plain; }
  // Elements in storage: numel(), with channels rounded up to the block for blocked ones.
  int64_t storage_numel() const { return storage_numel_; }
  size_t nbytes() const { return static_cast<size_t>(storage_numel_) * dtype_size(dtype_); }
  std::string shape_str() const { return resnet::shape_str(shape_); }

  // Typed access; the dtype must match (checked). values() requires a plain tensor.
  float* f32();
  const float* f32() const;
  int64_t* i64();
  const int64_t* i64() const;
  std::span<float> values();
  std::span<const float> values() const;
  void* raw();
  const void* raw() const { return storage_ ? storage_->data : nullptr; }
  // Counts mutable accesses to the storage (every non-const data accessor bumps it), so
  // that caches derived from a tensor (packed or folded weights) can tell it changed.
  // Atomic: threads may write disjoint parts of one tensor at once (the data loader's
  // workers each fill their samples of a batch).
  uint64_t version() const {
    return storage_ ? storage_->version.load(std::memory_order_relaxed) : 0;
  }
  // True when both share one storage.
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }
  // True when no other tensor shares this one's storage: nobody else can read it any
  // more, so an operation may write its result over it.
  bool sole_owner() const { return storage_.use_count() == 1; }
  // The same storage read as `dtype`, of the same element size (u8 as i8: an int8
  // residual whose bytes become a convolution's output).
  Tensor view_as(DType dtype) const;

  // A bf16 rounding of this f32 tensor's values, made by the kernel that wrote them in
  // the same pass and attached to the storage, for a consumer that computes in bf16: a
  // residual block's output is f32 for the next block's shortcut and bf16 for that block's
  // convolutions, and the rounding made here saves them a conversion pass over it.
  // `rounded` must have this tensor's shape and layout; the attachment holds only while
  // the storage is unchanged (version()).
  void attach_rounded(Tensor rounded) const;
  // The attached rounding in `dtype` (bf16), or an undefined tensor when there is none,
  // when it is not of `dtype`, or when the storage has changed since it was attached, or
  // when this tensor views the storage with another shape, dtype or layout.
  Tensor rounded(DType dtype) const;

  Tensor clone() const;
  // Copies `src` into this tensor's storage; shapes and dtypes must match.
  void copy_from(const Tensor& src);
  void fill(float value);
  // Same storage, new shape with the same number of elements (plain tensors only).
  Tensor reshape(Shape shape) const;

 private:
  Shape shape_;
  int64_t numel_ = 0;
  int64_t storage_numel_ = 0;
  DType dtype_ = DType::f32;
  Layout layout_ = Layout::plain;
  struct Storage {
    void* data = nullptr;
    size_t nbytes = 0;
    bool pooled = false;
    std::atomic<uint64_t> version{0};
    // attach_rounded's tensor, and the version it was made from.
    std::shared_ptr<const Tensor> rounded;
    uint64_t rounded_version = 0;
    Storage(size_t nbytes, bool zero);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
  };
  std::shared_ptr<Storage> storage_;

  struct Uninitialized {};
  Tensor(Shape shape, DType dtype, Layout layout, Uninitialized);
};

// Largest |x| over the tensor (0 for an empty tensor).
float max_abs(const Tensor& t);
// Largest |a - b|; shapes must match.
float max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace resnet
