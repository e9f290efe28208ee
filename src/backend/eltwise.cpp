#include "resnet/backend/eltwise.h"

#include <omp.h>

#include <mutex>

#include "dnnl_context.h"

namespace resnet::backend {

using namespace detail;

namespace {

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

dnnl::eltwise_forward& relu_forward_prim(const Shape& shape) {
  static PlanCache<dnnl::eltwise_forward> cache;
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache.find(shape);
  if (it == cache.end()) {
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu,
                                  plain_desc(shape), 0.f, 0.f);
    it = cache.emplace(shape, dnnl::eltwise_forward({d, engine()})).first;
  }
  return it->second;
}

dnnl::eltwise_backward& relu_backward_prim(const Shape& shape) {
  static PlanCache<dnnl::eltwise_backward> cache;
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache.find(shape);
  if (it == cache.end()) {
    // The _use_dst_for_bwd flavour lets us keep only the output, not the input.
    auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    dnnl::eltwise_forward::desc fd(dnnl::prop_kind::forward_training, alg, plain_desc(shape), 0.f,
                                   0.f);
    dnnl::eltwise_forward::primitive_desc fpd(fd, engine());
    dnnl::eltwise_backward::desc bd(alg, plain_desc(shape), plain_desc(shape), 0.f, 0.f);
    it = cache.emplace(shape, dnnl::eltwise_backward({bd, engine(), fpd})).first;
  }
  return it->second;
}

dnnl::binary& add_prim(const Shape& shape) {
  static PlanCache<dnnl::binary> cache;
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache.find(shape);
  if (it == cache.end()) {
    dnnl::binary::desc d(dnnl::algorithm::binary_add, plain_desc(shape), plain_desc(shape),
                         plain_desc(shape));
    it = cache.emplace(shape, dnnl::binary({d, engine()})).first;
  }
  return it->second;
}

void check_same_shape(const char* who, const Tensor& a, const Tensor& b) {
  RESNET_CHECK(a.shape() == b.shape(), who << ": expected operands of equal shape, got "
                                           << a.shape_str() << " and " << b.shape_str());
}

}  // namespace

Tensor relu_forward(const Tensor& src) {
  return guarded("ReLU forward", [&] {
    Tensor dst(src.shape());
    relu_forward_prim(src.shape())
        .execute(stream(), {{DNNL_ARG_SRC, wrap(src)}, {DNNL_ARG_DST, wrap(dst)}});
    stream().wait();
    return dst;
  });
}

Tensor relu_backward(const Tensor& diff_dst, const Tensor& dst) {
  check_same_shape("ReLU backward", diff_dst, dst);
  return guarded("ReLU backward", [&] {
    Tensor diff_src(dst.shape());
    relu_backward_prim(dst.shape())
        .execute(stream(), {{DNNL_ARG_DST, wrap(dst)},
                            {DNNL_ARG_DIFF_DST, wrap(diff_dst)},
                            {DNNL_ARG_DIFF_SRC, wrap(diff_src)}});
    stream().wait();
    return diff_src;
  });
}

Tensor add(const Tensor& a, const Tensor& b) {
  check_same_shape("add", a, b);
  return guarded("add", [&] {
    Tensor dst(a.shape());
    add_prim(a.shape()).execute(
        stream(),
        {{DNNL_ARG_SRC_0, wrap(a)}, {DNNL_ARG_SRC_1, wrap(b)}, {DNNL_ARG_DST, wrap(dst)}});
    stream().wait();
    return dst;
  });
}

void add_inplace(Tensor& acc, const Tensor& x) {
  check_same_shape("add", acc, x);
  guarded("add", [&] {
    // oneDNN's binary primitive may write its result over its first source.
    add_prim(acc.shape())
        .execute(
            stream(),
            {{DNNL_ARG_SRC_0, wrap(acc)}, {DNNL_ARG_SRC_1, wrap(x)}, {DNNL_ARG_DST, wrap(acc)}});
    stream().wait();
  });
}

void set_num_threads(int threads) {
  RESNET_CHECK(threads >= 1, "--threads: expected a positive count, got " << threads);
  omp_set_num_threads(threads);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace resnet::backend
