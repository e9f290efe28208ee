#pragma once
// Private to src/backend/: the only header that includes dnnl.hpp. Holds the engine and
// stream, the one reorder helper, and the translation of dnnl::error into resnet::Error.

#include <dnnl.hpp>

#include <string>
#include <unordered_map>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/tensor/tensor.h"

namespace resnet::backend::detail {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& engine();
dnnl::stream& stream();

memory::dims to_dims(const Shape& shape);
// oneDNN's element type for `type` (i8 is s8); i64 has none and throws.
dt dnnl_type(DType type);
// Plain row-major descriptor for a tensor of this rank (nchw, nc, x, ...).
memory::desc plain_desc(const Shape& shape, dt type = dt::f32);
// The descriptor of a tensor's storage: plain, or nChw16c for blocked16.
memory::desc desc_of(const Tensor& t);
// Wraps the tensor's storage (no copy) with desc_of(t).
memory wrap(const Tensor& t);
// A plan-cache key: the shape with the layout appended.
inline std::vector<int64_t> layout_key(const Tensor& t) {
  std::vector<int64_t> k = t.shape();
  k.push_back(static_cast<int64_t>(t.layout()));
  return k;
}
// Returns `m` itself when it already has `desc`, otherwise a new memory holding `m`
// reordered into `desc`. The reorder primitive is cached per (from, to) pair.
memory reorder_to(const memory& m, const memory::desc& desc);
// Reorders `src` into existing memory `dst`.
void reorder_into(const memory& src, const memory& dst);
// Reorders with scaling: dst = src * scales[i], one factor for the whole tensor (mask 0)
// or one per index of the dims in `mask` (quantizing weights per output channel, or
// moving an int8 activation to another scale).
void reorder_scaled(const memory& src, const memory& dst, int mask,
                    const std::vector<float>& scales);
// `desc` with another element type (same layout).
memory::desc with_type(const memory::desc& desc, memory::data_type type);

// Whether oneDNN's Winograd F(4x4, 3x3) may be tried: 3x3, stride 1, dense, ungrouped
// convolutions, unless RESNET_WINOGRAD=0 (a debugging switch). Where oneDNN has no
// Winograd implementation (no AVX-512, for example) creating it throws and callers use
// direct convolution.
bool winograd_candidate(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                        int64_t dilation_h, int64_t dilation_w, int64_t groups);
// acc += m, where m is plain with acc's shape: parameter gradients accumulate across
// backward passes, as in PyTorch.
void add_into(Tensor& acc, const memory& m);

// Runs `fn`, translating dnnl::error into resnet::Error prefixed with `who`.
template <typename Fn>
auto guarded(const std::string& who, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const dnnl::error& e) {
    throw Error(who + ": oneDNN failed: " + e.what());
  }
}

// A hashable key for plan caches: the dims that define a primitive.
struct ShapeKeyHash {
  size_t operator()(const std::vector<int64_t>& v) const {
    size_t h = v.size();
    for (int64_t x : v) h = h * 1000003u ^ static_cast<size_t>(x);
    return h;
  }
};
template <typename Plan>
using PlanCache = std::unordered_map<std::vector<int64_t>, Plan, ShapeKeyHash>;

}  // namespace resnet::backend::detail
