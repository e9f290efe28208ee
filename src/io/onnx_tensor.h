#pragma once
// Decoding ONNX TensorProtos (initializers and Constant values) into Tensors (private to
// src/io). FLOAT becomes f32, INT64 i64; every other dtype, external data and an element
// count that disagrees with the dims is an error naming the tensor.

#include <onnx/onnx_pb.h>

#include <string>

#include "resnet/tensor/tensor.h"

namespace resnet::io::detail {

// "FLOAT", "INT64", ... (the TensorProto.DataType name, or the number if unknown).
std::string onnx_dtype_name(int data_type);

// Decodes `t`. `who` prefixes every error message ("model.onnx: initializer 'fc.weight'").
// The data is checked against the dims before anything is allocated, so a lying header
// cannot make it allocate more than the file holds.
Tensor decode_onnx_tensor(const onnx::TensorProto& t, const std::string& who);

// The integers of a quantized tensor (INT8, UINT8 or INT32: weights, zero points and
// biases of a QDQ or QLinear model), widened to an i64 tensor; other dtypes are an error.
// The same checks as decode_onnx_tensor.
Tensor decode_onnx_integers(const onnx::TensorProto& t, const std::string& who);

}  // namespace resnet::io::detail
