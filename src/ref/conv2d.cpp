#include <vector>

#include "ref_checks.h"
#include "resnet/ref/kernels.h"

namespace resnet::ref {

namespace {

// Sizes of one convolution, derived once from the src and weight shapes.
struct ConvGeometry {
  int64_t N, IC, H, W;
  int64_t OC, ICG, OCG, KH, KW;  // ICG / OCG: channels per group
  int64_t OH, OW;
};

ConvGeometry conv_geometry(const char* who, const Shape& src, const Shape& weight,
                           const Conv2dParams& p) {
  RESNET_CHECK(p.stride_h >= 1 && p.stride_w >= 1,
               who << ": expected stride >= 1, got " << p.stride_h << "x" << p.stride_w);
  RESNET_CHECK(p.pad_h >= 0 && p.pad_w >= 0,
               who << ": expected padding >= 0, got " << p.pad_h << "x" << p.pad_w);
  RESNET_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1,
               who << ": expected dilation >= 1, got " << p.dilation_h << "x" << p.dilation_w);
  RESNET_CHECK(p.groups >= 1, who << ": expected groups >= 1, got " << p.groups);
  RESNET_CHECK(src.size() == 4, who << ": expected 4-D src [N, C, H, W], got " << shape_str(src));
  RESNET_CHECK(weight.size() == 4,
               who << ": expected 4-D weight [OC, IC/groups, KH, KW], got " << shape_str(weight));
  ConvGeometry g{};
  g.N = src[0];
  g.IC = src[1];
  g.H = src[2];
  g.W = src[3];
  g.OC = weight[0];
  g.KH = weight[2];
  g.KW = weight[3];
  RESNET_CHECK(g.IC % p.groups == 0, who << ": expected input channels divisible by groups = "
                                         << p.groups << ", got " << g.IC);
  RESNET_CHECK(g.OC % p.groups == 0, who << ": expected output channels divisible by groups = "
                                         << p.groups << ", got " << g.OC);
  g.ICG = g.IC / p.groups;
  g.OCG = g.OC / p.groups;
  RESNET_CHECK(weight[1] == g.ICG, who << ": expected weight with IC/groups = " << g.ICG
                                       << " channels, got " << weight[1]);
  RESNET_CHECK(g.KH >= 1 && g.KW >= 1,
               who << ": expected a non-empty kernel, got " << g.KH << "x" << g.KW);
  // Extent of the dilated kernel must fit in the padded input, else the output is empty.
  const int64_t eh = p.dilation_h * (g.KH - 1) + 1;
  const int64_t ew = p.dilation_w * (g.KW - 1) + 1;
  RESNET_CHECK(g.H + 2 * p.pad_h >= eh && g.W + 2 * p.pad_w >= ew,
               who << ": expected the dilated kernel " << eh << "x" << ew
                   << " to fit the padded input " << g.H + 2 * p.pad_h << "x" << g.W + 2 * p.pad_w
                   << ", got src " << shape_str(src));
  g.OH = (g.H + 2 * p.pad_h - eh) / p.stride_h + 1;
  g.OW = (g.W + 2 * p.pad_w - ew) / p.stride_w + 1;
  return g;
}

}  // namespace

Tensor conv2d_forward(const Tensor& src, const Tensor& weight, const Tensor& bias,
                      const Conv2dParams& p) {
  const char* who = "ref::conv2d_forward";
  detail::check_f32(src, 4, who, "src");
  detail::check_f32(weight, 4, who, "weight");
  const ConvGeometry g = conv_geometry(who, src.shape(), weight.shape(), p);
  if (bias.defined()) detail::check_f32_shape(bias, {g.OC}, who, "bias");

  Tensor dst({g.N, g.OC, g.OH, g.OW});
  const float* x = src.f32();
  const float* w = weight.f32();
  const float* b = bias.defined() ? bias.f32() : nullptr;
  float* y = dst.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t ic0 = oc / g.OCG * g.ICG;  // first input channel of oc's group
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = b ? b[oc] : 0.0;
          for (int64_t icg = 0; icg < g.ICG; ++icg) {
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                acc += double(x[((n * g.IC + ic0 + icg) * g.H + ih) * g.W + iw]) *
                       w[((oc * g.ICG + icg) * g.KH + kh) * g.KW + kw];
              }
            }
          }
          y[((n * g.OC + oc) * g.OH + oh) * g.OW + ow] = static_cast<float>(acc);
        }
      }
    }
  }
  return dst;
}

Tensor conv2d_backward_data(const Tensor& diff_dst, const Tensor& weight, const Shape& src_shape,
                            const Conv2dParams& p) {
  const char* who = "ref::conv2d_backward_data";
  detail::check_f32(weight, 4, who, "weight");
  const ConvGeometry g = conv_geometry(who, src_shape, weight.shape(), p);
  detail::check_f32_shape(diff_dst, {g.N, g.OC, g.OH, g.OW}, who, "diff_dst");

  // Scatter form of the transposed convolution: each dst gradient flows back to every src
  // element its window touched. Accumulated in double so the oracle adds no f32 error.
  std::vector<double> dx(static_cast<size_t>(shape_numel(src_shape)), 0.0);
  const float* dy = diff_dst.f32();
  const float* w = weight.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t ic0 = oc / g.OCG * g.ICG;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const double d = dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow];
          for (int64_t icg = 0; icg < g.ICG; ++icg) {
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                dx[((n * g.IC + ic0 + icg) * g.H + ih) * g.W + iw] +=
                    d * w[((oc * g.ICG + icg) * g.KH + kh) * g.KW + kw];
              }
            }
          }
        }
      }
    }
  }
  Tensor diff_src(src_shape);
  float* out = diff_src.f32();
  for (size_t i = 0; i < dx.size(); ++i) out[i] = static_cast<float>(dx[i]);
  return diff_src;
}

Tensor conv2d_backward_weights(const Tensor& diff_dst, const Tensor& src, const Shape& weight_shape,
                               const Conv2dParams& p, Tensor* diff_bias) {
  const char* who = "ref::conv2d_backward_weights";
  detail::check_f32(src, 4, who, "src");
  const ConvGeometry g = conv_geometry(who, src.shape(), weight_shape, p);
  detail::check_f32_shape(diff_dst, {g.N, g.OC, g.OH, g.OW}, who, "diff_dst");

  Tensor diff_weight(weight_shape);
  const float* x = src.f32();
  const float* dy = diff_dst.f32();
  float* dw = diff_weight.f32();
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    const int64_t ic0 = oc / g.OCG * g.ICG;
    for (int64_t icg = 0; icg < g.ICG; ++icg) {
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          double acc = 0.0;
          for (int64_t n = 0; n < g.N; ++n) {
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t ow = 0; ow < g.OW; ++ow) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                acc += double(dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) *
                       x[((n * g.IC + ic0 + icg) * g.H + ih) * g.W + iw];
              }
            }
          }
          dw[((oc * g.ICG + icg) * g.KH + kh) * g.KW + kw] = static_cast<float>(acc);
        }
      }
    }
  }

  if (diff_bias != nullptr) {
    Tensor db({g.OC});
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      double acc = 0.0;
      for (int64_t n = 0; n < g.N; ++n) {
        const float* plane = dy + (n * g.OC + oc) * g.OH * g.OW;
        for (int64_t i = 0; i < g.OH * g.OW; ++i) acc += plane[i];
      }
      db.f32()[oc] = static_cast<float>(acc);
    }
    *diff_bias = db;
  }
  return diff_weight;
}

}  // namespace resnet::ref
