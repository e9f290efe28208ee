#include "resnet/nn/flatten.h"

#include <sstream>

#include "resnet/core/error.h"

namespace resnet::nn {

Flatten::Flatten(int64_t start_dim, int64_t end_dim)
    : Module("Flatten"), start_dim_(start_dim), end_dim_(end_dim) {
  // Same-sign dims can be ordered now; mixed signs only once the rank is known.
  RESNET_CHECK((start_dim < 0) != (end_dim < 0) || start_dim <= end_dim,
               who() << ": expected start_dim <= end_dim, got start_dim=" << start_dim
                     << ", end_dim=" << end_dim);
}

std::string Flatten::extra_repr() const {
  std::ostringstream s;
  s << "start_dim=" << start_dim_ << ", end_dim=" << end_dim_;
  return s.str();
}

std::string Flatten::label() const {
  std::ostringstream s;
  s << "Flatten(" << extra_repr() << ")";
  return s.str();
}

Shape Flatten::flattened(const Shape& in) const {
  const auto rank = static_cast<int64_t>(in.size());
  RESNET_CHECK(rank >= 1, who() << ": expected an input of rank >= 1, got " << shape_str(in));
  auto resolve = [&](int64_t dim, const char* what) {
    RESNET_CHECK(dim >= -rank && dim < rank, who() << ": expected " << what << " in [" << -rank
                                                   << ", " << rank - 1 << "] for input "
                                                   << shape_str(in) << ", got " << dim);
    return dim < 0 ? dim + rank : dim;
  };
  const int64_t start = resolve(start_dim_, "start_dim"), end = resolve(end_dim_, "end_dim");
  RESNET_CHECK(start <= end, who() << ": expected start_dim <= end_dim for input " << shape_str(in)
                                   << ", got dims " << start << " and " << end);
  Shape out(in.begin(), in.begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= in[d];
  out.push_back(merged);
  out.insert(out.end(), in.begin() + end + 1, in.end());
  return out;
}

Tensor Flatten::forward_impl(const Tensor& x) {
  Shape out = flattened(x.shape());
  if (keeps_for_backward()) {
    saved_input_shape_ = x.shape();
    saved_output_shape_ = out;
  }
  return x.reshape(std::move(out));
}

Tensor Flatten::backward_impl(const Tensor& grad_output) {
  RESNET_CHECK(grad_output.shape() == saved_output_shape_,
               who() << ": expected output gradient " << shape_str(saved_output_shape_) << ", got "
                     << grad_output.shape_str());
  return grad_output.reshape(saved_input_shape_);
}

}  // namespace resnet::nn
