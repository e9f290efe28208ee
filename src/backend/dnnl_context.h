#pragma once
// Private to src/backend/: the only header that includes dnnl.hpp. Holds the engine and
// stream, the one reorder helper, and the translation of dnnl::error into resnet::Error.
// The engine is shared; the stream is one per thread. Plan caches: plan_cache.h.

#include <dnnl.hpp>

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/tensor/tensor.h"

namespace resnet::backend::detail {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// The CPU engine; calling it adopts the process-wide thread count on this thread
// (thread_count.h), so it is asked for where a primitive is created or run.
dnnl::engine& engine();
dnnl::stream& stream();

// Every primitive is created with `with_user_scratchpad` and run through `execute`,
// which lends it this thread's scratch buffer. oneDNN's own (library-managed) scratchpad
// is one per thread, sized when a primitive is created on that thread: a primitive
// created on one thread and run on another could overrun it (a model built on one
// thread and trained on another crashed so). With the scratchpad ours, a primitive runs
// on any thread, so plans can be shared by threads and instances can move between them.
// `attr` is a handle: the mode is set on the object the caller passed, which is meant.
dnnl::primitive_attr with_user_scratchpad(dnnl::primitive_attr attr = dnnl::primitive_attr());
// Runs `prim` on this thread's stream with `args` (plus its scratchpad) and waits.
void execute(const dnnl::primitive& prim, std::unordered_map<int, memory> args);

memory::dims to_dims(const Shape& shape);
// oneDNN's element type for `type` (i8 is s8); i64 has none and throws.
dt dnnl_type(DType type);
// The inverse: the DType of oneDNN's `type`, where there is one.
std::optional<DType> dtype_of(dt type);
// Plain row-major descriptor for a tensor of this rank (nchw, nc, x, ...).
memory::desc plain_desc(const Shape& shape, dt type = dt::f32);
// The descriptor of a tensor's storage: plain, nChw16c/8c/4c for blocked16/8/4, NHWC
// for channels_last. The one translation from Tensor's layouts to oneDNN's.
memory::desc desc_of(const Shape& shape, DType dtype, Layout layout);
memory::desc desc_of(const Tensor& t);
// The inverse: the dtype and layout of a Tensor whose storage `desc` describes, when a
// Tensor can hold it (oneDNN also knows layouts Tensor does not, such as nChw8c).
struct TensorFormat {
  DType dtype;
  Layout layout;
};
std::optional<TensorFormat> tensor_format(const memory::desc& desc);
// Wraps the tensor's storage (no copy) with desc_of(t).
memory wrap(const Tensor& t);
// Returns `m` itself when it already has `desc`, otherwise a new memory holding `m`
// reordered into `desc`. The reorder primitive is cached per (from, to) pair, in a
// cache shared by every thread (locked).
memory reorder_to(const memory& m, const memory::desc& desc);
// Reorders `src` into existing memory `dst`.
void reorder_into(const memory& src, const memory& dst);
// Reorders with scaling: dst = src * scales[i], one factor for the whole tensor (mask 0)
// or one per index of the dims in `mask` (quantizing weights per output channel, or
// moving an int8 activation to another scale).
void reorder_scaled(const memory& src, const memory& dst, int mask,
                    const std::vector<float>& scales);
// The scale an int8 tensor's values carry (real = stored / scale) is a property of the
// graph value it holds, kept by the compiled model, not by the tensor: `int8_scale` for
// an i8/u8 tensor, and 1 for f32 and bf16, which store real values.
float stored_scale(const Tensor& t, float int8_scale);
// Writes `src`, whose values carry scale `src_scale`, into `dst` with scale `dst_scale`
// (a plain reorder when the two are equal).
void convert_into(const memory& src, float src_scale, const memory& dst, float dst_scale);
// `src` itself when it already has `desc` and `dst_scale`, else new memory holding it
// so converted.
memory converted(const memory& src, float src_scale, const memory::desc& desc, float dst_scale);
// `desc` with another element type (same layout).
memory::desc with_type(const memory::desc& desc, memory::data_type type);

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

}  // namespace resnet::backend::detail
