#include "resnet/backend/activation_ops.h"

#include "activation_impl.h"
#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

struct ActivationPool2d::Impl {
  Pool2dConfig cfg;
  struct Plan {
    dnnl::pooling_forward::primitive_desc pd;
    dnnl::pooling_forward prim;
  };
  PlanCache<Plan> plans;
};

ActivationPool2d::ActivationPool2d(const Pool2dConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
}
ActivationPool2d::~ActivationPool2d() = default;

Activation ActivationPool2d::run(const Activation& src, int64_t out_h, int64_t out_w,
                                 ActivationPool* pool) {
  return guarded("pool", [&] {
    const memory& s = ActivationAccess::mem(src);
    const memory::desc sd = s.get_desc();
    const memory::dims d = sd.dims();
    RESNET_CHECK(d.size() == 4, "pool: expected a 4-D input, got " << shape_str(d));
    Impl::Plan& plan = impl_->plans.get(PlanKey(sd, out_h, out_w), [&] {
      const Pool2dConfig& c = impl_->cfg;
      memory::dims kernel = {c.kernel_h, c.kernel_w}, strides = {c.stride_h, c.stride_w};
      memory::dims pad_l = {c.pad_t, c.pad_l}, pad_r = {c.pad_b, c.pad_r};
      if (c.global) {
        kernel = {d[2], d[3]};
        strides = {1, 1};
        pad_l = pad_r = {0, 0};
      } else {
        // The right/bottom padding that yields the graph's output size (ceil_mode).
        pad_r = {(out_h - 1) * c.stride_h + c.kernel_h - d[2] - c.pad_t,
                 (out_w - 1) * c.stride_w + c.kernel_w - d[3] - c.pad_l};
      }
      const dnnl::algorithm alg = c.kind == Pool2dConfig::Kind::max ? dnnl::algorithm::pooling_max
                                  : c.kind == Pool2dConfig::Kind::avg_include_pad
                                      ? dnnl::algorithm::pooling_avg_include_padding
                                      : dnnl::algorithm::pooling_avg_exclude_padding;
      // The output keeps the input's layout: pooling is memory-bound, a reorder would
      // cost as much as the pool.
      memory::desc dst_md =
          memory::desc({d[0], d[1], out_h, out_w}, sd.data_type(), memory::format_tag::any);
      dnnl::pooling_forward::desc pdesc(dnnl::prop_kind::forward_inference, alg, sd, dst_md,
                                        strides, kernel, pad_l, pad_r);
      dnnl::pooling_forward::primitive_desc pd(pdesc, with_user_scratchpad(), engine());
      return Impl::Plan{pd, dnnl::pooling_forward(pd)};
    });
    Activation out = ActivationAccess::allocate(plan.pd.dst_desc(), pool);
    execute(plan.prim, {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, ActivationAccess::mem(out)}});
    // Max and average keep an int8 input's scale.
    ActivationAccess::set_scale(out, ActivationAccess::scale(src));
    return out;
  });
}

struct ActivationLinear::Impl {
  DType dtype;
  Tensor weight, bias;
  struct Plan {
    dnnl::inner_product_forward::primitive_desc pd;
    dnnl::inner_product_forward prim;
    memory packed_weight, packed_bias;
  };
  PlanCache<Plan> plans;
};

ActivationLinear::ActivationLinear(DType dtype) : impl_(std::make_unique<Impl>()) {
  impl_->dtype = dtype;
}
ActivationLinear::~ActivationLinear() = default;

void ActivationLinear::set_weights(const Tensor& weight, const Tensor& bias) {
  RESNET_CHECK(weight.rank() == 2 && bias.rank() == 1 && bias.dim(0) == weight.dim(0),
               "linear: expected weight [OUT, IN] and bias [OUT], got "
                   << weight.shape_str() << " and " << bias.shape_str());
  impl_->weight = weight;
  impl_->bias = bias;
  impl_->plans.clear();
}

Tensor ActivationLinear::run(const Activation& src) {
  return guarded("linear", [&] {
    const memory::dims d0 = ActivationAccess::mem(src).get_desc().dims();
    const int64_t out = impl_->weight.dim(0), in = impl_->weight.dim(1);
    int64_t features = 1;
    for (size_t i = 1; i < d0.size(); ++i) features *= d0[i];
    RESNET_CHECK(features == in,
                 "linear: expected " << in << " input features, got " << shape_str(d0));
    // The input in f32 (bf16 stays bf16; int8 is dequantized: the classifier is a tiny
    // share of the work). A pooled [N, C, 1, 1] input is read as [N, C]: reordering its
    // N * C values costs nothing, and oneDNN's 2-D kernels beat its blocked 4-D path.
    const dt type = dnnl_type(impl_->dtype);
    const memory::desc sd0 = ActivationAccess::mem(src).get_desc();
    const dt src_type = sd0.data_type() == dt::bf16 && type == dt::bf16 ? dt::bf16 : dt::f32;
    memory s, plain_holder;  // plain_holder owns the bytes `s` views
    if (d0.size() == 4 && d0[2] == 1 && d0[3] == 1) {
      memory plain = ActivationAccess::converted(
          src, memory::desc(d0, src_type, memory::format_tag::abcd), 1.f);
      s = memory(memory::desc({d0[0], d0[1]}, src_type, memory::format_tag::ab), engine(),
                 plain.get_data_handle());
      plain_holder = plain;
    } else {
      s = ActivationAccess::converted(src, with_type(sd0, src_type), 1.f);
    }
    const memory::desc sd = s.get_desc();
    const memory::dims d = sd.dims();
    Impl::Plan& p = impl_->plans.get(PlanKey(sd), [&] {
      memory::dims wdims = {out};
      for (size_t i = 1; i < d.size(); ++i) wdims.push_back(d[i]);
      dnnl::inner_product_forward::desc desc(
          dnnl::prop_kind::forward_inference, sd,
          memory::desc(wdims, src_type, memory::format_tag::any),
          memory::desc({out}, dt::f32, memory::format_tag::a),
          memory::desc({d[0], out}, dt::f32, memory::format_tag::ab));
      dnnl::inner_product_forward::primitive_desc pd(desc, with_user_scratchpad(), engine());
      Impl::Plan plan{pd, dnnl::inner_product_forward(pd), memory(pd.weights_desc(), engine()),
                      memory(pd.bias_desc(), engine())};
      const Tensor& w = impl_->weight;
      memory::desc plain_w = plain_desc(Shape(wdims.begin(), wdims.end()));
      reorder_into(memory(plain_w, engine(), const_cast<void*>(w.raw())), plan.packed_weight);
      reorder_into(wrap(impl_->bias), plan.packed_bias);
      return plan;
    });
    memory src_m = reorder_to(s, p.pd.src_desc());
    Tensor y({d[0], out});
    execute(p.prim, {{DNNL_ARG_SRC, src_m},
                     {DNNL_ARG_WEIGHTS, p.packed_weight},
                     {DNNL_ARG_BIAS, p.packed_bias},
                     {DNNL_ARG_DST, wrap(y)}});
    return y;
  });
}

// Element-wise primitives are cheap to create next to the passes they make; a small
// cache keeps them per descriptor all the same. These caches are shared by every model,
// which may run on several threads at once (PlanCache is locked).

Activation activation_relu(const Activation& x, ActivationPool* pool) {
  return guarded("relu", [&] {
    static PlanCache<dnnl::eltwise_forward> cache;
    const memory& m = ActivationAccess::mem(x);
    dnnl::eltwise_forward& relu = cache.get(PlanKey(m.get_desc()), [&] {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::eltwise_relu, m.get_desc(), 0.f, 0.f);
      return dnnl::eltwise_forward({d, with_user_scratchpad(), engine()});
    });
    Activation out = ActivationAccess::allocate(m.get_desc(), pool);
    execute(relu, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, ActivationAccess::mem(out)}});
    return out;
  });
}

Activation activation_add(const Activation& a, const Activation& b, bool relu,
                          ActivationPool* pool) {
  return guarded("add", [&] {
    static PlanCache<dnnl::binary> cache;
    const memory& ma = ActivationAccess::mem(a);
    RESNET_CHECK(ma.get_desc().dims() == ActivationAccess::mem(b).get_desc().dims(),
                 "add: expected two inputs of one shape, got " << shape_str(a.shape()) << " and "
                                                               << shape_str(b.shape()));
    memory mb = reorder_to(ActivationAccess::mem(b), ma.get_desc());
    dnnl::binary& add = cache.get(PlanKey(ma.get_desc(), relu), [&] {
      dnnl::post_ops ops;
      if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      dnnl::primitive_attr attr = with_user_scratchpad();
      attr.set_post_ops(ops);
      dnnl::binary::desc d(dnnl::algorithm::binary_add, ma.get_desc(), ma.get_desc(),
                           ma.get_desc());
      return dnnl::binary({d, attr, engine()});
    });
    Activation out = ActivationAccess::allocate(ma.get_desc(), pool);
    execute(
        add,
        {{DNNL_ARG_SRC_0, ma}, {DNNL_ARG_SRC_1, mb}, {DNNL_ARG_DST, ActivationAccess::mem(out)}});
    return out;
  });
}

Activation activation_convert(const Activation& x, DType dtype, bool blocked,
                              ActivationPool* pool) {
  return guarded("convert", [&] {
    const memory& m = ActivationAccess::mem(x);
    const memory::dims d = m.get_desc().dims();
    const bool can_block = blocked && d.size() == 4;
    memory::desc want(d, dnnl_type(dtype),
                      can_block
                          ? memory::format_tag::aBcd16b
                          : (d.size() == 4 ? memory::format_tag::abcd : memory::format_tag::ab));
    if (m.get_desc() == want && ActivationAccess::scale(x) == 1.f) return x;
    Activation out = ActivationAccess::allocate(want, pool);
    ActivationAccess::convert_into(x, ActivationAccess::mem(out), 1.f);
    return out;
  });
}

bool cpu_has_native_bf16() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

bool cpu_has_vnni() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
         isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
}

}  // namespace resnet::backend
