#include "dnnl_context.h"

#include <cstdlib>

#include "plan_cache.h"
#include "thread_count.h"

namespace resnet::backend::detail {

dnnl::engine& engine() {
  // Every oneDNN primitive is created and run with the engine at hand, on the thread
  // that creates or runs it: the one place that sees them all (thread_count.h).
  adopt_thread_count();
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  // One stream per thread: models run from several threads at once must not share one.
  thread_local dnnl::stream s(engine());
  return s;
}

dnnl::primitive_attr with_user_scratchpad(dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

namespace {
// This thread's scratch buffer, grown to the largest scratchpad it has lent (as
// oneDNN's own per-thread scratchpad is); at least `bytes`.
void* scratch_buffer(size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (buffer.size < bytes) {
    const size_t size = (bytes + 4095) / 4096 * 4096;
    void* data = std::aligned_alloc(4096, size);
    RESNET_CHECK(data != nullptr,
                 "backend: out of memory allocating a scratchpad of " << size << " bytes");
    std::free(buffer.data);
    buffer.data = data;
    buffer.size = size;
  }
  return buffer.data;
}
}  // namespace

void execute(const dnnl::primitive& prim, std::unordered_map<int, memory> args) {
  const dnnl_memory_desc_t* scratch =
      dnnl_primitive_desc_query_md(prim.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  if (scratch != nullptr && scratch->ndims > 0) {
    const memory::desc md(*scratch);
    const size_t bytes = md.get_size();
    if (bytes > 0) args[DNNL_ARG_SCRATCHPAD] = memory(md, engine(), scratch_buffer(bytes));
  }
  prim.execute(stream(), args);
  stream().wait();
}

memory::dims to_dims(const Shape& shape) {
  return memory::dims(shape.begin(), shape.end());
}

memory::desc plain_desc(const Shape& shape, dt type) {
  RESNET_CHECK(
      !shape.empty() && shape.size() <= DNNL_MAX_NDIMS,
      "backend: expected a tensor of rank 1 to " << DNNL_MAX_NDIMS << ", got " << shape_str(shape));
  // Row-major strides: the same descriptor as the plain tags (a, ab, ...) for any rank.
  memory::dims strides(shape.size(), 1);
  for (size_t i = shape.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * shape[i + 1];
  return memory::desc(to_dims(shape), type, strides);
}

dt dnnl_type(DType type) {
  switch (type) {
    case DType::f32:
      return dt::f32;
    case DType::bf16:
      return dt::bf16;
    case DType::i8:
      return dt::s8;
    case DType::u8:
      return dt::u8;
    case DType::i64:
      break;
  }
  throw Error("backend: dtype " + dtype_name(type) + " has no oneDNN equivalent");
}

memory::desc desc_of(const Shape& shape, DType dtype, Layout layout) {
  switch (layout) {
    case Layout::blocked16:
      return memory::desc(to_dims(shape), dnnl_type(dtype), tag::aBcd16b);
    case Layout::blocked8:
      return memory::desc(to_dims(shape), dnnl_type(dtype), tag::aBcd8b);
    case Layout::blocked4:
      return memory::desc(to_dims(shape), dnnl_type(dtype), tag::aBcd4b);
    case Layout::channels_last:
      return memory::desc(to_dims(shape), dnnl_type(dtype), tag::acdb);
    case Layout::plain:
      break;
  }
  return plain_desc(shape, dnnl_type(dtype));
}

memory::desc desc_of(const Tensor& t) {
  return desc_of(t.shape(), t.dtype(), t.layout());
}

std::optional<DType> dtype_of(dt type) {
  for (DType d : {DType::f32, DType::bf16, DType::i8, DType::u8})
    if (dnnl_type(d) == type) return d;
  return std::nullopt;
}

std::optional<TensorFormat> tensor_format(const memory::desc& desc) {
  const std::optional<DType> dtype = dtype_of(desc.data_type());
  if (!dtype) return std::nullopt;
  const memory::dims dims = desc.dims();
  const Shape shape(dims.begin(), dims.end());
  if (dims.empty() || dims.size() > 5) return std::nullopt;
  for (Layout layout : {Layout::plain, Layout::blocked16, Layout::blocked8, Layout::blocked4,
                        Layout::channels_last}) {
    if (layout != Layout::plain && dims.size() != 4) continue;
    if (desc_of(shape, *dtype, layout) == desc) return TensorFormat{*dtype, layout};
  }
  return std::nullopt;
}

memory wrap(const Tensor& t) {
  return memory(desc_of(t), engine(), const_cast<void*>(t.raw()));
}

namespace {
// Reorder primitives are cheap to run but not to create; keep one per descriptor pair.
// Shared by every model and every thread (PlanCache is locked).
dnnl::reorder& cached_reorder(const memory::desc& from, const memory::desc& to) {
  static PlanCache<dnnl::reorder> cache;
  return cache.get(PlanKey(from, to), [&] {
    return dnnl::reorder(
        dnnl::reorder::primitive_desc(engine(), from, engine(), to, with_user_scratchpad()));
  });
}
}  // namespace

void reorder_into(const memory& src, const memory& dst) {
  execute(cached_reorder(src.get_desc(), dst.get_desc()),
          {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}

void reorder_scaled(const memory& src, const memory& dst, int mask,
                    const std::vector<float>& scales) {
  // Scaled reorders run once per weight pack or per boundary between precisions; they
  // are not cached.
  dnnl::primitive_attr attr = with_user_scratchpad();
  attr.set_output_scales(mask, scales);
  execute(dnnl::reorder(dnnl::reorder::primitive_desc(engine(), src.get_desc(), engine(),
                                                      dst.get_desc(), attr)),
          {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}

float stored_scale(const Tensor& t, float int8_scale) {
  return t.dtype() == DType::i8 || t.dtype() == DType::u8 ? int8_scale : 1.f;
}

void convert_into(const memory& src, float src_scale, const memory& dst, float dst_scale) {
  const float factor = dst_scale / src_scale;
  if (factor == 1.f)
    reorder_into(src, dst);
  else
    reorder_scaled(src, dst, 0, {factor});
}

memory converted(const memory& src, float src_scale, const memory::desc& desc, float dst_scale) {
  if (src.get_desc() == desc && src_scale == dst_scale) return src;
  memory out(desc, engine());
  convert_into(src, src_scale, out, dst_scale);
  return out;
}

memory::desc with_type(const memory::desc& desc, memory::data_type type) {
  memory::desc md = desc;
  md.data.data_type = memory::convert_to_c(type);
  return md;
}

void add_into(Tensor& acc, const memory& m) {
  const float* src = static_cast<const float*>(m.get_data_handle());
  float* dst = acc.f32();
  const int64_t n = acc.numel();
  adopt_thread_count();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

memory reorder_to(const memory& m, const memory::desc& desc) {
  if (m.get_desc() == desc) return m;
  memory out(desc, engine());
  reorder_into(m, out);
  return out;
}

}  // namespace resnet::backend::detail
