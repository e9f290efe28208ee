#include "resnet/nn/batchnorm2d.h"

#include <cstdio>

#include "resnet/core/error.h"

namespace resnet::nn {

BatchNorm2d::BatchNorm2d(int64_t num_features) : BatchNorm2d(BatchNorm2dOptions{num_features}) {}

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& o) : Module("BatchNorm2d"), options_(o) {
  RESNET_CHECK(o.num_features > 0,
               "BatchNorm2d: expected a positive num_features, got " << o.num_features);
  RESNET_CHECK(o.eps > 0, "BatchNorm2d: expected a positive eps, got " << o.eps);
  const int64_t c = o.num_features;
  weight_ = &register_parameter("weight", Tensor::full({c}, 1.f));
  bias_ = &register_parameter("bias", Tensor({c}));
  running_mean_ = &register_buffer("running_mean", Tensor({c}));
  running_var_ = &register_buffer("running_var", Tensor::full({c}, 1.f));
  num_batches_tracked_ = &register_buffer("num_batches_tracked", Tensor({}, DType::i64));
  kernel_ = std::make_unique<backend::BatchNorm2dKernel>(o.eps);
}

Tensor BatchNorm2d::forward_impl(const Tensor& x) {
  const int64_t c = options_.num_features;
  RESNET_CHECK(x.rank() == 4, who() << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  RESNET_CHECK(x.dim(1) == c,
               who() << ": expected input with " << c << " channels, got " << x.dim(1));
  const bool relu = applies_relu();
  const bool observed = relu && forward_observed();
  if (!is_training() || frozen()) {
    Tensor y =
        kernel_->forward_eval(x, weight_->value, bias_->value, *running_mean_, *running_var_, relu);
    if (observed)
      observed_normalized_ = kernel_->forward_eval(x, weight_->value, bias_->value, *running_mean_,
                                                   *running_var_, false);
    if (keeps_for_backward()) {
      saved_input_ = keeps_input_ ? x : Tensor();
      saved_mean_ = running_mean_->clone();
      saved_var_ = running_var_->clone();
      saved_used_batch_stats_ = false;
      saved_output_ = relu ? y : Tensor();
      saved_output_type_ = DType::f32;
    }
    return y;
  }
  return forward_train(x, relu, observed);
}

Tensor BatchNorm2d::forward_train(const Tensor& x, bool relu, bool observed) {
  const int64_t c = options_.num_features;
  const int64_t n = x.dim(0) * x.dim(2) * x.dim(3);
  // PyTorch refuses this too: the unbiased variance of one value is undefined.
  RESNET_CHECK(n > 1, who() << ": expected more than 1 value per channel when training, got input "
                            << x.shape_str());
  Tensor mean({c}), var({c});
  const bool recompute = relu && recompute_output_;
  saved_affine_ = {};
  saved_output_type_ = relu && !observed ? output_type_ : DType::f32;
  Tensor y =
      kernel_->forward_train(x, weight_->value, bias_->value, mean, var, relu,
                             recompute || observed ? &saved_affine_ : nullptr, saved_output_type_);
  if (observed) observed_normalized_ = kernel_->apply(x, saved_affine_, false);
  const float m = static_cast<float>(options_.momentum);
  // With synchronised statistics, the count is every rank's (n when alone).
  const double count = kernel_->last_train_count();
  const float unbias = static_cast<float>(count) / static_cast<float>(count - 1);
  float* rm = running_mean_->f32();
  float* rv = running_var_->f32();
  for (int64_t i = 0; i < c; ++i) {
    rm[i] = (1.f - m) * rm[i] + m * mean.f32()[i];
    rv[i] = (1.f - m) * rv[i] + m * var.f32()[i] * unbias;
  }
  num_batches_tracked_->i64()[0] += 1;
  saved_input_ = keeps_input_ ? x : Tensor();
  saved_mean_ = mean;
  saved_var_ = var;
  saved_used_batch_stats_ = true;
  saved_output_ = relu && !recompute ? y : Tensor();
  return y;
}

void BatchNorm2d::report_forward(const Tensor& input, const Tensor& output) {
  if (!observed_normalized_.defined()) return Module::report_forward(input, output);
  Tensor normalized = std::move(observed_normalized_);
  observed_normalized_ = Tensor();
  Module::report_forward(input, normalized);
  if (relu_module_) relu_module_->notify_observer(normalized, output);
}

const Tensor& BatchNorm2d::output_for_backward() {
  RESNET_CHECK(fused_relu_ && saved_input_.defined(),
               who() << ": no kept output (a forward with a fused ReLU that kept its state "
                        "comes first)");
  if (!saved_output_.defined())
    saved_output_ = kernel_->apply(saved_input_, saved_affine_, true, saved_output_type_);
  return saved_output_;
}

Tensor BatchNorm2d::backward_impl(const Tensor& grad_output) {
  RESNET_CHECK(saved_input_.defined(), who() << ": backward without its input (the owner "
                                                "supplies it with supply_input)");
  RESNET_CHECK(grad_output.shape() == saved_input_.shape(),
               who() << ": expected output gradient " << saved_input_.shape_str() << ", got "
                     << grad_output.shape_str());
  if (fused_relu_) output_for_backward();
  Tensor no_weight_grad, no_bias_grad;
  return kernel_->backward(grad_output, saved_input_, weight_->value, saved_mean_, saved_var_,
                           !saved_used_batch_stats_, frozen() ? no_weight_grad : weight_->grad,
                           frozen() ? no_bias_grad : bias_->grad, saved_output_, grad_input_type_);
}

std::string BatchNorm2d::label() const {
  return "BatchNorm2d(" + std::to_string(options_.num_features) + ")";
}

std::string BatchNorm2d::extra_repr() const {
  // Python prints these floats with repr(); %g writes the same text for short values
  // such as 1e-05, 0.001 and 0.1.
  char eps[32], momentum[32];
  std::snprintf(eps, sizeof eps, "%g", options_.eps);
  std::snprintf(momentum, sizeof momentum, "%g", options_.momentum);
  return std::to_string(options_.num_features) + ", eps=" + eps + ", momentum=" + momentum +
         ", affine=True, track_running_stats=True";
}

}  // namespace resnet::nn
