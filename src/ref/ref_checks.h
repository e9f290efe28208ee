#pragma once
// Argument checks shared by the reference kernels (private to src/ref).

#include "resnet/core/error.h"
#include "resnet/tensor/tensor.h"

namespace resnet::ref::detail {

// `t` must be a defined f32 tensor of the given rank.
inline void check_f32(const Tensor& t, int rank, const char* who, const char* name) {
  RESNET_CHECK(t.defined(), who << ": expected " << name << " to be defined, got an empty tensor");
  RESNET_CHECK(t.dtype() == DType::f32,
               who << ": expected " << name << " of dtype f32, got " << dtype_name(t.dtype()));
  RESNET_CHECK(t.rank() == rank,
               who << ": expected " << rank << "-D " << name << ", got " << t.shape_str());
}

// `t` must be a defined f32 tensor of exactly `shape`.
inline void check_f32_shape(const Tensor& t, const Shape& shape, const char* who,
                            const char* name) {
  RESNET_CHECK(t.defined(), who << ": expected " << name << " to be defined, got an empty tensor");
  RESNET_CHECK(t.dtype() == DType::f32,
               who << ": expected " << name << " of dtype f32, got " << dtype_name(t.dtype()));
  RESNET_CHECK(t.shape() == shape, who << ": expected " << name << " of shape " << shape_str(shape)
                                       << ", got " << t.shape_str());
}

}  // namespace resnet::ref::detail
