#include "dnnl_context.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

namespace resnet::backend::detail {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  // One stream per thread: models run from several threads at once must not share one.
  thread_local dnnl::stream s(engine());
  return s;
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
dnnl::reorder& cached_reorder(const memory::desc& from, const memory::desc& to) {
  struct DescPairLess {
    bool operator()(const std::pair<memory::desc, memory::desc>& a,
                    const std::pair<memory::desc, memory::desc>& b) const {
      int c = std::memcmp(&a.first.data, &b.first.data, sizeof(a.first.data));
      if (c != 0) return c < 0;
      return std::memcmp(&a.second.data, &b.second.data, sizeof(a.second.data)) < 0;
    }
  };
  static std::map<std::pair<memory::desc, memory::desc>, dnnl::reorder, DescPairLess> cache;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(from, to);
  auto it = cache.find(key);
  if (it == cache.end()) {
    dnnl::reorder::primitive_desc pd(engine(), from, engine(), to);
    it = cache.emplace(key, dnnl::reorder(pd)).first;
  }
  return it->second;
}
}  // namespace

void reorder_into(const memory& src, const memory& dst) {
  cached_reorder(src.get_desc(), dst.get_desc())
      .execute(stream(), {{DNNL_ARG_FROM, const_cast<memory&>(src)},
                          {DNNL_ARG_TO, const_cast<memory&>(dst)}});
  stream().wait();
}

void reorder_scaled(const memory& src, const memory& dst, int mask,
                    const std::vector<float>& scales) {
  // Scaled reorders run once per weight pack or per boundary between precisions; they
  // are not cached.
  dnnl::primitive_attr attr;
  attr.set_output_scales(mask, scales);
  dnnl::reorder(
      dnnl::reorder::primitive_desc(engine(), src.get_desc(), engine(), dst.get_desc(), attr))
      .execute(stream(), {{DNNL_ARG_FROM, const_cast<memory&>(src)},
                          {DNNL_ARG_TO, const_cast<memory&>(dst)}});
  stream().wait();
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
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

memory reorder_to(const memory& m, const memory::desc& desc) {
  if (m.get_desc() == desc) return m;
  memory out(desc, engine());
  reorder_into(m, out);
  return out;
}

bool winograd_candidate(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                        int64_t dilation_h, int64_t dilation_w, int64_t groups) {
  static const bool enabled = [] {
    const char* v = std::getenv("RESNET_WINOGRAD");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled && kernel_h == 3 && kernel_w == 3 && stride_h == 1 && stride_w == 1 &&
         dilation_h == 1 && dilation_w == 1 && groups == 1;
}

}  // namespace resnet::backend::detail
