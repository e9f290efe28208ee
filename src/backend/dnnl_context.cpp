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
  static const tag tags[] = {tag::undef, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde};
  RESNET_CHECK(!shape.empty() && shape.size() <= 5,
               "backend: expected a tensor of rank 1 to 5, got " << shape_str(shape));
  return memory::desc(to_dims(shape), type, tags[shape.size()]);
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

memory::desc desc_of(const Tensor& t) {
  if (t.layout() == Layout::blocked16)
    return memory::desc(to_dims(t.shape()), dt::f32, tag::aBcd16b);
  return plain_desc(t.shape(), dnnl_type(t.dtype()));
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
