#include "resnet/backend/eltwise.h"

#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

namespace {

dnnl::eltwise_forward& relu_forward_prim(const Tensor& t) {
  static PlanCache<dnnl::eltwise_forward> cache;
  return cache.get(PlanKey(desc_of(t)), [&] {
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu,
                                  desc_of(t), 0.f, 0.f);
    return dnnl::eltwise_forward({d, with_user_scratchpad(), engine()});
  });
}

dnnl::eltwise_backward& relu_backward_prim(const Tensor& t) {
  static PlanCache<dnnl::eltwise_backward> cache;
  return cache.get(PlanKey(desc_of(t)), [&] {
    // The _use_dst_for_bwd flavour lets us keep only the output, not the input.
    auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    dnnl::eltwise_forward::desc fd(dnnl::prop_kind::forward_training, alg, desc_of(t), 0.f, 0.f);
    dnnl::eltwise_forward::primitive_desc fpd(fd, engine());
    dnnl::eltwise_backward::desc bd(alg, desc_of(t), desc_of(t), 0.f, 0.f);
    return dnnl::eltwise_backward({bd, with_user_scratchpad(), engine(), fpd});
  });
}

// Binary add, optionally followed by ReLU as a post-op.
dnnl::binary& add_prim(const Tensor& t, bool relu) {
  static PlanCache<dnnl::binary> cache;
  return cache.get(PlanKey(desc_of(t), relu), [&] {
    dnnl::binary::desc d(dnnl::algorithm::binary_add, desc_of(t), desc_of(t), desc_of(t));
    dnnl::primitive_attr attr = with_user_scratchpad();
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    return dnnl::binary({d, attr, engine()});
  });
}

void check_same(const char* who, const Tensor& a, const Tensor& b) {
  RESNET_CHECK(a.shape() == b.shape() && a.layout() == b.layout(),
               who << ": expected operands of equal shape and layout, got " << a.shape_str()
                   << " and " << b.shape_str());
}

Tensor binary_add(const char* who, const Tensor& a, const Tensor& b, bool relu) {
  check_same(who, a, b);
  return guarded(who, [&] {
    Tensor dst = Tensor::empty(a.shape(), DType::f32, a.layout());
    execute(add_prim(a, relu),
            {{DNNL_ARG_SRC_0, wrap(a)}, {DNNL_ARG_SRC_1, wrap(b)}, {DNNL_ARG_DST, wrap(dst)}});
    return dst;
  });
}

}  // namespace

Tensor relu_forward(const Tensor& src) {
  return guarded("ReLU forward", [&] {
    Tensor dst = Tensor::empty(src.shape(), DType::f32, src.layout());
    execute(relu_forward_prim(src), {{DNNL_ARG_SRC, wrap(src)}, {DNNL_ARG_DST, wrap(dst)}});
    return dst;
  });
}

Tensor relu_backward(const Tensor& diff_dst, const Tensor& dst) {
  check_same("ReLU backward", diff_dst, dst);
  return guarded("ReLU backward", [&] {
    Tensor diff_src = Tensor::empty(dst.shape(), DType::f32, dst.layout());
    execute(relu_backward_prim(dst), {{DNNL_ARG_DST, wrap(dst)},
                                      {DNNL_ARG_DIFF_DST, wrap(diff_dst)},
                                      {DNNL_ARG_DIFF_SRC, wrap(diff_src)}});
    return diff_src;
  });
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_add("add", a, b, false);
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  return binary_add("add+ReLU", a, b, true);
}

void add_inplace(Tensor& acc, const Tensor& x) {
  check_same("add", acc, x);
  guarded("add", [&] {
    // oneDNN's binary primitive may write its result over its first source.
    execute(add_prim(acc, false),
            {{DNNL_ARG_SRC_0, wrap(acc)}, {DNNL_ARG_SRC_1, wrap(x)}, {DNNL_ARG_DST, wrap(acc)}});
  });
}

Tensor to_layout(const Tensor& t, Layout layout) {
  if (t.layout() == layout) return t;
  return guarded("layout conversion", [&] {
    Tensor out = Tensor::empty(t.shape(), t.dtype(), layout);
    reorder_into(wrap(t), wrap(out));
    return out;
  });
}

}  // namespace resnet::backend
