#include "resnet/backend/activation_ops.h"

#include "dnnl_context.h"
#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

struct ActivationPool2d::Impl {
  Pool2dConfig cfg;
  struct Plan {
    dnnl::pooling_v2_forward::primitive_desc pd;
    dnnl::pooling_v2_forward prim;
  };
  PlanCache<Plan> plans;
};

ActivationPool2d::ActivationPool2d(const Pool2dConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
}
ActivationPool2d::~ActivationPool2d() = default;

Tensor ActivationPool2d::run(const Tensor& src, int64_t out_h, int64_t out_w) {
  return run(src, std::vector<int64_t>{out_h, out_w});
}

Tensor ActivationPool2d::run(const Tensor& src, const std::vector<int64_t>& out_spatial) {
  return guarded("pool", [&] {
    RESNET_CHECK(src.defined() && (src.rank() == 4 || src.rank() == 5) &&
                     out_spatial.size() == static_cast<size_t>(src.rank()) - 2,
                 "pool: expected a 4-D or 5-D input and its output's "
                     << (src.defined() ? src.rank() - 2 : 2) << " spatial sizes, got "
                     << (src.defined() ? src.shape_str() : std::string("nothing")) << " and "
                     << out_spatial.size() << " sizes");
    const memory::desc sd = desc_of(src);
    const memory::dims d = sd.dims();
    Shape out_shape = {d[0], d[1]};
    out_shape.insert(out_shape.end(), out_spatial.begin(), out_spatial.end());
    Impl::Plan& plan = impl_->plans.get(PlanKey(sd, out_shape), [&] {
      const Pool2dConfig& c = impl_->cfg;
      const bool has_d = d.size() == 5;
      memory::dims kernel = {c.kernel_h, c.kernel_w}, strides = {c.stride_h, c.stride_w};
      memory::dims dilation = {c.dilation_h - 1, c.dilation_w - 1};  // oneDNN: 0 is none
      memory::dims pad_l = {c.pad_t, c.pad_l};
      if (has_d) {
        kernel.insert(kernel.begin(), c.kernel_d);
        strides.insert(strides.begin(), c.stride_d);
        dilation.insert(dilation.begin(), c.dilation_d - 1);
        pad_l.insert(pad_l.begin(), c.pad_front);
      }
      memory::dims pad_r(kernel.size(), 0);
      if (c.global) {
        kernel.assign(d.begin() + 2, d.end());
        strides.assign(kernel.size(), 1);
        dilation.assign(kernel.size(), 0);
        pad_l.assign(kernel.size(), 0);
      } else {
        // The end padding that yields the graph's output size (ceil_mode).
        for (size_t a = 0; a < kernel.size(); ++a)
          pad_r[a] = (out_spatial[a] - 1) * strides[a] + (kernel[a] - 1) * (dilation[a] + 1) + 1 -
                     d[a + 2] - pad_l[a];
      }
      const dnnl::algorithm alg = c.kind == Pool2dConfig::Kind::max ? dnnl::algorithm::pooling_max
                                  : c.kind == Pool2dConfig::Kind::avg_include_pad
                                      ? dnnl::algorithm::pooling_avg_include_padding
                                      : dnnl::algorithm::pooling_avg_exclude_padding;
      // The output keeps the input's layout: pooling is memory-bound, a reorder would
      // cost as much as the pool.
      memory::desc dst_md = desc_of(out_shape, src.dtype(), src.layout());
      dnnl::pooling_v2_forward::desc pdesc(dnnl::prop_kind::forward_inference, alg, sd, dst_md,
                                           strides, kernel, dilation, pad_l, pad_r);
      dnnl::pooling_v2_forward::primitive_desc pd(pdesc, with_user_scratchpad(), engine());
      return Impl::Plan{pd, dnnl::pooling_v2_forward(pd)};
    });
    Tensor out = Tensor::empty(out_shape, src.dtype(), src.layout());
    execute(plan.prim, {{DNNL_ARG_SRC, wrap(src)}, {DNNL_ARG_DST, wrap(out)}});
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

Tensor ActivationLinear::run(const Tensor& src, float int8_scale) {
  return guarded("linear", [&] {
    RESNET_CHECK(src.defined() && src.rank() >= 2,
                 "linear: expected an input [N, ...], got "
                     << (src.defined() ? src.shape_str() : std::string("nothing")));
    const memory::dims d0 = to_dims(src.shape());
    const int64_t out = impl_->weight.dim(0), in = impl_->weight.dim(1);
    int64_t features = 1;
    for (size_t i = 1; i < d0.size(); ++i) features *= d0[i];
    RESNET_CHECK(features == in,
                 "linear: expected " << in << " input features, got " << shape_str(d0));
    // The input in f32 (bf16 stays bf16; int8 is dequantized: the classifier is a tiny
    // share of the work). A pooled [N, C, 1, 1] input is read as [N, C]: reordering its
    // N * C values costs nothing, and oneDNN's 2-D kernels beat its blocked 4-D path.
    const dt type = dnnl_type(impl_->dtype);
    const memory::desc sd0 = desc_of(src);
    const dt src_type = sd0.data_type() == dt::bf16 && type == dt::bf16 ? dt::bf16 : dt::f32;
    const float scale = stored_scale(src, int8_scale);
    memory s, plain_holder;  // plain_holder owns the bytes `s` views
    if (d0.size() == 4 && d0[2] == 1 && d0[3] == 1) {
      memory plain =
          converted(wrap(src), scale, memory::desc(d0, src_type, memory::format_tag::abcd), 1.f);
      s = memory(memory::desc({d0[0], d0[1]}, src_type, memory::format_tag::ab), engine(),
                 plain.get_data_handle());
      plain_holder = plain;
    } else {
      s = converted(wrap(src), scale, with_type(sd0, src_type), 1.f);
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

Tensor activation_relu(const Tensor& x) {
  return guarded("relu", [&] {
    static PlanCache<dnnl::eltwise_forward> cache;
    const memory::desc desc = desc_of(x);
    dnnl::eltwise_forward& relu = cache.get(PlanKey(desc), [&] {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::eltwise_relu, desc, 0.f, 0.f);
      return dnnl::eltwise_forward({d, with_user_scratchpad(), engine()});
    });
    Tensor out = Tensor::empty(x.shape(), x.dtype(), x.layout());
    execute(relu, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DST, wrap(out)}});
    return out;
  });
}

Tensor activation_add(const Tensor& a, const Tensor& b, bool relu) {
  return guarded("add", [&] {
    static PlanCache<dnnl::binary> cache;
    RESNET_CHECK(a.shape() == b.shape(), "add: expected two inputs of one shape, got "
                                             << a.shape_str() << " and " << b.shape_str());
    const memory::desc desc = desc_of(a);
    memory mb = reorder_to(wrap(b), desc);
    dnnl::binary& add = cache.get(PlanKey(desc, relu), [&] {
      dnnl::post_ops ops;
      if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      dnnl::primitive_attr attr = with_user_scratchpad();
      attr.set_post_ops(ops);
      dnnl::binary::desc d(dnnl::algorithm::binary_add, desc, desc, desc);
      return dnnl::binary({d, attr, engine()});
    });
    Tensor out = Tensor::empty(a.shape(), a.dtype(), a.layout());
    execute(add, {{DNNL_ARG_SRC_0, wrap(a)}, {DNNL_ARG_SRC_1, mb}, {DNNL_ARG_DST, wrap(out)}});
    return out;
  });
}

Tensor activation_softmax(const Tensor& x) {
  return guarded("softmax", [&] {
    RESNET_CHECK(x.rank() == 2 && x.dtype() == DType::f32 && x.is_plain(),
                 "softmax: expected a plain f32 [N, K] input, got " << x.shape_str());
    static PlanCache<dnnl::softmax_forward> cache;
    const memory::desc desc = desc_of(x);
    dnnl::softmax_forward& softmax = cache.get(PlanKey(desc), [&] {
      dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, desc, 1);
      return dnnl::softmax_forward({d, with_user_scratchpad(), engine()});
    });
    Tensor out = Tensor::empty(x.shape(), x.dtype(), x.layout());
    execute(softmax, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DST, wrap(out)}});
    return out;
  });
}

Tensor activation_convert(const Tensor& x, float int8_scale, DType dtype, bool blocked) {
  return guarded("convert", [&] {
    const Layout layout = blocked && x.rank() == 4 ? Layout::blocked16 : Layout::plain;
    if (x.dtype() == dtype && x.layout() == layout) return x;
    Tensor out = Tensor::empty(x.shape(), dtype, layout);
    convert_into(wrap(x), stored_scale(x, int8_scale), wrap(out), 1.f);
    return out;
  });
}

Tensor to_plain_f32(const Tensor& x, float int8_scale) {
  return activation_convert(x, int8_scale, DType::f32, false);
}

bool cpu_has_native_bf16() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

std::string bf16_fallback_note() {
  return cpu_has_native_bf16() ? std::string()
                               : "bf16: this CPU has no native bf16 (AVX512_BF16); running f32";
}

bool cpu_has_vnni() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
         isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
}

}  // namespace resnet::backend
