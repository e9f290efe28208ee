#include "resnet/backend/pooling.h"

#include <optional>

#include "plan_cache.h"
#include "thread_count.h"

namespace resnet::backend {

using namespace detail;

namespace {

// One pooling geometry on one input shape: the descriptors, and the primitives created
// on first use (a training forward, an inference forward, a backward).
struct PoolPlan {
  dnnl::algorithm alg;
  Layout layout;  // of src, dst and their gradients: plain, or blocked16 (nChw16c)
  memory::desc src_md, dst_md;
  memory::dims strides, kernel, padding;

  std::optional<dnnl::pooling_forward::primitive_desc> train_pd;
  std::optional<dnnl::pooling_forward> train;
  std::optional<dnnl::pooling_forward> infer;
  std::optional<dnnl::pooling_backward> bwd;

  // Padding the same amount on the right as on the left gives oneDNN's output size
  // (H - k + 2p) / s + 1, PyTorch's floor division, exactly; the windows that exist are
  // the same whatever the right padding, so nothing else changes.
  dnnl::pooling_forward::desc forward_desc(dnnl::prop_kind prop) const {
    return dnnl::pooling_forward::desc(prop, alg, src_md, dst_md, strides, kernel, padding,
                                       padding);
  }
  dnnl::pooling_forward::primitive_desc& training_pd() {
    if (!train_pd)
      train_pd.emplace(forward_desc(dnnl::prop_kind::forward_training), with_user_scratchpad(),
                       engine());
    return *train_pd;
  }
};

PoolPlan make_plan(dnnl::algorithm alg, const Shape& src_shape, int64_t kernel_h, int64_t kernel_w,
                   int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t out_h,
                   int64_t out_w, Layout layout = Layout::plain) {
  PoolPlan p;
  p.alg = alg;
  p.layout = layout;
  auto md = [&](const Shape& shape) { return desc_of(shape, DType::f32, layout); };
  p.src_md = md(src_shape);
  p.dst_md = md({src_shape[0], src_shape[1], out_h, out_w});
  p.strides = {stride_h, stride_w};
  p.kernel = {kernel_h, kernel_w};
  p.padding = {pad_h, pad_w};
  return p;
}

void check_shape(const char* who, const char* name, const Tensor& t, const Shape& expected) {
  RESNET_CHECK(t.defined() && t.shape() == expected,
               who << ": expected " << name << " " << shape_str(expected) << ", got "
                   << (t.defined() ? t.shape_str() : std::string("an undefined tensor")));
}

// Forward through `p`; a non-null `workspace` asks for a training forward that keeps it.
Tensor pool_forward(PoolPlan& p, const Tensor& src, Tensor* workspace) {
  Tensor dst(Shape(p.dst_md.dims()), DType::f32, p.layout);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, wrap(src)}, {DNNL_ARG_DST, wrap(dst)}};
  if (workspace != nullptr) {
    auto& pd = p.training_pd();
    if (!p.train) p.train.emplace(pd);
    const memory::desc ws_md = pd.workspace_desc();
    const auto bytes = static_cast<int64_t>(ws_md.get_size());
    if (bytes > 0) {
      // Reuse the previous forward's workspace when it fits: it is overwritten whole.
      if (!workspace->defined() || workspace->dtype() != DType::u8 || workspace->numel() != bytes)
        *workspace = Tensor({bytes}, DType::u8);
      args[DNNL_ARG_WORKSPACE] = memory(ws_md, engine(), workspace->raw());
    } else {
      *workspace = Tensor();
    }
    execute(*p.train, args);
  } else {
    if (!p.infer) {
      p.infer.emplace(dnnl::pooling_forward::primitive_desc(
          p.forward_desc(dnnl::prop_kind::forward_inference), with_user_scratchpad(), engine()));
    }
    execute(*p.infer, args);
  }
  return dst;
}

Tensor pool_backward(PoolPlan& p, const char* who, const Tensor& diff_dst,
                     const Tensor* workspace) {
  check_shape(who, "diff_dst", diff_dst, Shape(p.dst_md.dims()));
  RESNET_CHECK(diff_dst.layout() == p.layout,
               who << ": expected diff_dst in the forward's layout, got another");
  auto& fwd_pd = p.training_pd();
  const memory::desc ws_md = fwd_pd.workspace_desc();
  if (!p.bwd) {
    dnnl::pooling_backward::desc d(p.alg, p.src_md, p.dst_md, p.strides, p.kernel, p.padding,
                                   p.padding);
    p.bwd.emplace(
        dnnl::pooling_backward::primitive_desc(d, with_user_scratchpad(), engine(), fwd_pd));
  }
  Tensor diff_src(Shape(p.src_md.dims()), DType::f32, p.layout);
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, wrap(diff_dst)},
                                          {DNNL_ARG_DIFF_SRC, wrap(diff_src)}};
  if (ws_md.get_size() > 0) {
    const auto bytes = static_cast<int64_t>(ws_md.get_size());
    const bool have = workspace != nullptr && workspace->defined();
    RESNET_CHECK(have && workspace->dtype() == DType::u8 && workspace->numel() == bytes,
                 who << ": expected the workspace of a training forward on "
                     << shape_str(Shape(p.src_md.dims())) << " (" << bytes << " bytes), got "
                     << (have ? static_cast<int64_t>(workspace->nbytes()) : 0) << " bytes");
    args[DNNL_ARG_WORKSPACE] = memory(ws_md, engine(), const_cast<void*>(workspace->raw()));
  }
  execute(*p.bwd, args);
  return diff_src;
}

void check_src(const char* who, const Tensor& src) {
  RESNET_CHECK(src.defined() && src.dtype() == DType::f32 && src.rank() == 4,
               who << ": expected a 4-D f32 src [N, C, H, W], got "
                   << (src.defined() ? src.shape_str() : std::string("an undefined tensor")));
}

// Adaptive windows: output index i of `out` covers input [start, end) of `in`.
int64_t window_start(int64_t i, int64_t in, int64_t out) {
  return i * in / out;
}
int64_t window_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// MaxPool2dKernel

struct MaxPool2dKernel::Impl {
  int64_t kernel, stride, pad;
  PlanCache<PoolPlan> plans;

  // Plain or blocked16: the training stem's activations are blocked, and reordering them
  // for the pool cost four reorders of the largest tensors of the step (two of
  // N x 64 x 112 x 112 at 224 pixels), about 9% of a resnet18 training step.
  PoolPlan& plan_for(const Shape& src_shape, Layout layout) {
    return plans.get(PlanKey(src_shape, layout), [&] {
      const int64_t out_h = (src_shape[2] + 2 * pad - kernel) / stride + 1;
      const int64_t out_w = (src_shape[3] + 2 * pad - kernel) / stride + 1;
      return make_plan(dnnl::algorithm::pooling_max, src_shape, kernel, kernel, stride, stride, pad,
                       pad, out_h, out_w, layout);
    });
  }
};

MaxPool2dKernel::MaxPool2dKernel(int64_t kernel, int64_t stride, int64_t pad)
    : impl_(std::make_unique<Impl>()) {
  RESNET_CHECK(kernel >= 1 && stride >= 1 && pad >= 0 && pad <= kernel / 2,
               "MaxPool2d kernel: expected kernel >= 1, stride >= 1 and 0 <= pad <= kernel / 2, "
               "got kernel "
                   << kernel << ", stride " << stride << ", pad " << pad);
  impl_->kernel = kernel;
  impl_->stride = stride;
  impl_->pad = pad;
}
MaxPool2dKernel::~MaxPool2dKernel() = default;

int64_t MaxPool2dKernel::out_size(int64_t in) const {
  return (in + 2 * impl_->pad - impl_->kernel) / impl_->stride + 1;
}

Tensor MaxPool2dKernel::forward(const Tensor& src, Tensor* workspace) {
  const char* who = "MaxPool2d forward";
  check_src(who, src);
  RESNET_CHECK(
      src.dim(2) + 2 * impl_->pad >= impl_->kernel && src.dim(3) + 2 * impl_->pad >= impl_->kernel,
      who << ": expected a padded input of at least " << impl_->kernel << "x" << impl_->kernel
          << ", got src " << src.shape_str() << " with padding " << impl_->pad);
  return guarded(who, [&] {
    return pool_forward(impl_->plan_for(src.shape(), src.layout()), src, workspace);
  });
}

Tensor MaxPool2dKernel::backward(const Tensor& diff_dst, const Shape& src_shape,
                                 const Tensor& workspace) {
  const char* who = "MaxPool2d backward";
  return guarded(who, [&] {
    return pool_backward(impl_->plan_for(src_shape, diff_dst.layout()), who, diff_dst, &workspace);
  });
}

// ---------------------------------------------------------------------------------------
// AdaptiveAvgPool2dKernel

struct AdaptiveAvgPool2dKernel::Impl {
  int64_t out_h, out_w;
  PlanCache<PoolPlan> plans;

  // Regular grid: every window is (H / OH) x (W / OW), stepping by its own size.
  bool regular(const Shape& s) const { return s[2] % out_h == 0 && s[3] % out_w == 0; }

  PoolPlan& plan_for(const Shape& src_shape) {
    return plans.get(PlanKey(src_shape), [&] {
      const int64_t kh = src_shape[2] / out_h, kw = src_shape[3] / out_w;
      // No padding, so exclude/include padding agree; exclude is the one that never
      // divides by a padded count.
      return make_plan(dnnl::algorithm::pooling_avg_exclude_padding, src_shape, kh, kw, kh, kw, 0,
                       0, out_h, out_w);
    });
  }
};

AdaptiveAvgPool2dKernel::AdaptiveAvgPool2dKernel(int64_t out_h, int64_t out_w)
    : impl_(std::make_unique<Impl>()) {
  RESNET_CHECK(out_h >= 1 && out_w >= 1,
               "AdaptiveAvgPool2d kernel: expected a positive output size, got (" << out_h << ", "
                                                                                  << out_w << ")");
  impl_->out_h = out_h;
  impl_->out_w = out_w;
}
AdaptiveAvgPool2dKernel::~AdaptiveAvgPool2dKernel() = default;

Tensor AdaptiveAvgPool2dKernel::forward(const Tensor& src) {
  const char* who = "AdaptiveAvgPool2d forward";
  check_src(who, src);
  RESNET_CHECK(src.dim(2) >= 1 && src.dim(3) >= 1,
               who << ": expected a non-empty image, got src " << src.shape_str());
  const Shape& s = src.shape();
  if (impl_->regular(s))
    return guarded(who, [&] { return pool_forward(impl_->plan_for(s), src, nullptr); });

  // Uneven windows (PyTorch's start = floor(i*H/OH), end = ceil((i+1)*H/OH)): oneDNN
  // pooling has one window size per primitive, so this case is a plain loop.
  const int64_t NC = s[0] * s[1], H = s[2], W = s[3], OH = impl_->out_h, OW = impl_->out_w;
  Tensor dst({s[0], s[1], OH, OW});
  const float* x = src.f32();
  float* y = dst.f32();
  adopt_thread_count();
#pragma omp parallel for if (NC * H * W > 65536)
  for (int64_t nc = 0; nc < NC; ++nc) {
    const float* plane = x + nc * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = window_start(oh, H, OH), h1 = window_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = window_start(ow, W, OW), w1 = window_end(ow, W, OW);
        double acc = 0.0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += plane[h * W + w];
        y[(nc * OH + oh) * OW + ow] = static_cast<float>(acc / double((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return dst;
}

Tensor AdaptiveAvgPool2dKernel::backward(const Tensor& diff_dst, const Shape& src_shape) {
  const char* who = "AdaptiveAvgPool2d backward";
  RESNET_CHECK(src_shape.size() == 4 && src_shape[2] >= 1 && src_shape[3] >= 1,
               who << ": expected a non-empty 4-D src shape, got " << shape_str(src_shape));
  const int64_t OH = impl_->out_h, OW = impl_->out_w;
  if (impl_->regular(src_shape))
    return guarded(
        who, [&] { return pool_backward(impl_->plan_for(src_shape), who, diff_dst, nullptr); });

  check_shape(who, "diff_dst", diff_dst, {src_shape[0], src_shape[1], OH, OW});
  const int64_t NC = src_shape[0] * src_shape[1], H = src_shape[2], W = src_shape[3];
  Tensor diff_src(src_shape);
  const float* dy = diff_dst.f32();
  float* dx = diff_src.f32();
  adopt_thread_count();
#pragma omp parallel for if (NC * H * W > 65536)
  for (int64_t nc = 0; nc < NC; ++nc) {
    float* plane = dx + nc * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = window_start(oh, H, OH), h1 = window_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = window_start(ow, W, OW), w1 = window_end(ow, W, OW);
        const float share =
            dy[(nc * OH + oh) * OW + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) plane[h * W + w] += share;
      }
    }
  }
  return diff_src;
}

}  // namespace resnet::backend
