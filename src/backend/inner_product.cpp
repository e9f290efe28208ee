#include "resnet/backend/inner_product.h"

#include <optional>

#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

namespace {

void check_shape(const char* who, const char* name, const Tensor& t, const Shape& expected) {
  RESNET_CHECK(t.defined() && t.dtype() == DType::f32 && t.shape() == expected,
               who << ": expected f32 " << name << " " << shape_str(expected) << ", got "
                   << (t.defined() ? t.shape_str() : std::string("an undefined tensor")));
}

}  // namespace

struct InnerProductKernel::Impl {
  int64_t in = 0, out = 0;
  bool bias = false;

  struct Plan {
    memory::desc src_plain, dst_plain, weight_plain, bias_plain;
    dnnl::inner_product_forward::primitive_desc fwd_pd;
    dnnl::inner_product_forward fwd;
    // Backward primitives are created on the first backward call only.
    std::optional<dnnl::inner_product_backward_data::primitive_desc> bwd_data_pd;
    std::optional<dnnl::inner_product_backward_data> bwd_data;
    std::optional<dnnl::inner_product_backward_weights::primitive_desc> bwd_weights_pd;
    std::optional<dnnl::inner_product_backward_weights> bwd_weights;
  };
  // Keyed by the batch size N.
  PlanCache<Plan> plans;

  static memory::desc any(const memory::desc& md) {
    return memory::desc(md.dims(), dt::f32, tag::any);
  }
  memory::desc bias_any() const {
    return bias ? memory::desc({out}, dt::f32, tag::any) : memory::desc();
  }

  Plan& plan_for(int64_t n) {
    return plans.get(PlanKey(n), [&] { return make_plan(n); });
  }

  Plan make_plan(int64_t n) const {
    memory::desc src_plain = plain_desc({n, in}), dst_plain = plain_desc({n, out});
    memory::desc weight_plain = plain_desc({out, in});
    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_training, any(src_plain),
                                        any(weight_plain), bias_any(), any(dst_plain));
    dnnl::inner_product_forward::primitive_desc pd(d, with_user_scratchpad(), engine());
    Plan p{src_plain,    dst_plain,
           weight_plain, bias ? plain_desc({out}) : memory::desc(),
           pd,           dnnl::inner_product_forward(pd),
           {},           {},
           {},           {}};
    return p;
  }

  void ensure_backward(Plan& p) {
    if (p.bwd_data) return;
    dnnl::inner_product_backward_data::desc dd(any(p.src_plain), any(p.weight_plain),
                                               any(p.dst_plain));
    p.bwd_data_pd.emplace(dd, with_user_scratchpad(), engine(), p.fwd_pd);
    p.bwd_data.emplace(*p.bwd_data_pd);
    dnnl::inner_product_backward_weights::desc wd(any(p.src_plain), any(p.weight_plain), bias_any(),
                                                  any(p.dst_plain));
    p.bwd_weights_pd.emplace(wd, with_user_scratchpad(), engine(), p.fwd_pd);
    p.bwd_weights.emplace(*p.bwd_weights_pd);
  }
};

InnerProductKernel::InnerProductKernel(int64_t in_features, int64_t out_features, bool bias)
    : impl_(std::make_unique<Impl>()) {
  RESNET_CHECK(in_features > 0 && out_features > 0,
               "InnerProduct kernel: expected positive feature counts, got in "
                   << in_features << ", out " << out_features);
  impl_->in = in_features;
  impl_->out = out_features;
  impl_->bias = bias;
}
InnerProductKernel::~InnerProductKernel() = default;

Tensor InnerProductKernel::forward(const Tensor& src, const Tensor& weight, const Tensor& bias) {
  const char* who = "Linear forward";
  auto& im = *impl_;
  RESNET_CHECK(src.defined() && src.rank() == 2 && src.dim(1) == im.in,
               who << ": expected src [N, " << im.in << "], got "
                   << (src.defined() ? src.shape_str() : std::string("an undefined tensor")));
  check_shape(who, "weight", weight, {im.out, im.in});
  if (im.bias) check_shape(who, "bias", bias, {im.out});
  return guarded(who, [&] {
    Impl::Plan& p = im.plan_for(src.dim(0));
    Tensor dst({src.dim(0), im.out});
    memory src_m = reorder_to(wrap(src), p.fwd_pd.src_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            p.fwd_pd.weights_desc());
    memory dst_plain_m = wrap(dst);
    const bool dst_direct = p.fwd_pd.dst_desc() == p.dst_plain;
    memory dst_m = dst_direct ? dst_plain_m : memory(p.fwd_pd.dst_desc(), engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DST, dst_m}};
    if (im.bias) args[DNNL_ARG_BIAS] = reorder_to(wrap(bias), p.fwd_pd.bias_desc());
    execute(p.fwd, args);
    if (!dst_direct) reorder_into(dst_m, dst_plain_m);
    return dst;
  });
}

Tensor InnerProductKernel::backward_data(const Tensor& diff_dst, const Tensor& weight) {
  const char* who = "Linear backward";
  auto& im = *impl_;
  RESNET_CHECK(
      diff_dst.defined() && diff_dst.rank() == 2 && diff_dst.dim(1) == im.out,
      who << ": expected diff_dst [N, " << im.out << "], got "
          << (diff_dst.defined() ? diff_dst.shape_str() : std::string("an undefined tensor")));
  check_shape(who, "weight", weight, {im.out, im.in});
  return guarded(who, [&] {
    Impl::Plan& p = im.plan_for(diff_dst.dim(0));
    im.ensure_backward(p);
    auto& pd = *p.bwd_data_pd;
    Tensor diff_src({diff_dst.dim(0), im.in});
    memory dd_m = reorder_to(wrap(diff_dst), pd.diff_dst_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            pd.weights_desc());
    memory ds_plain = wrap(diff_src);
    const bool direct = pd.diff_src_desc() == p.src_plain;
    memory ds_m = direct ? ds_plain : memory(pd.diff_src_desc(), engine());
    execute(*p.bwd_data,
            {{DNNL_ARG_DIFF_DST, dd_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DIFF_SRC, ds_m}});
    if (!direct) reorder_into(ds_m, ds_plain);
    return diff_src;
  });
}

void InnerProductKernel::backward_weights(const Tensor& diff_dst, const Tensor& src,
                                          Tensor& diff_weight, Tensor& diff_bias) {
  const char* who = "Linear backward";
  auto& im = *impl_;
  RESNET_CHECK(src.defined() && src.rank() == 2 && src.dim(1) == im.in,
               who << ": expected src [N, " << im.in << "], got "
                   << (src.defined() ? src.shape_str() : std::string("an undefined tensor")));
  check_shape(who, "diff_dst", diff_dst, {src.dim(0), im.out});
  check_shape(who, "diff_weight", diff_weight, {im.out, im.in});
  if (im.bias) check_shape(who, "diff_bias", diff_bias, {im.out});
  guarded(who, [&] {
    Impl::Plan& p = im.plan_for(src.dim(0));
    im.ensure_backward(p);
    auto& pd = *p.bwd_weights_pd;
    memory src_m = reorder_to(wrap(src), pd.src_desc());
    memory dd_m = reorder_to(wrap(diff_dst), pd.diff_dst_desc());
    memory dw_m(pd.diff_weights_desc(), engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_DIFF_DST, dd_m}, {DNNL_ARG_DIFF_WEIGHTS, dw_m}};
    std::optional<memory> db_m;
    if (im.bias) {
      db_m.emplace(pd.diff_bias_desc(), engine());
      args[DNNL_ARG_DIFF_BIAS] = *db_m;
    }
    execute(*p.bwd_weights, args);
    add_into(diff_weight, reorder_to(dw_m, p.weight_plain));
    if (im.bias) add_into(diff_bias, reorder_to(*db_m, p.bias_plain));
  });
}

}  // namespace resnet::backend
