#include "onnx_tensor.h"

#include <cstring>
#include <limits>

#include "resnet/core/error.h"

namespace resnet::io::detail {

std::string onnx_dtype_name(int data_type) {
  if (onnx::TensorProto_DataType_IsValid(data_type))
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(data_type));
  return "data type " + std::to_string(data_type);
}

namespace {

// The shape of `t`, with the element count checked for negative dims and overflow; the
// data must be inside the file, in one piece.
Shape checked_shape(const onnx::TensorProto& t, const std::string& who, int64_t& numel) {
  RESNET_CHECK(
      t.data_location() != onnx::TensorProto_DataLocation_EXTERNAL && t.external_data_size() == 0,
      who << " uses external data, which is not supported (save the model with its "
             "weights inside the .onnx file)");
  RESNET_CHECK(!t.has_segment(), who << " is stored in segments, which is not supported");
  Shape shape;
  numel = 1;
  for (int64_t d : t.dims()) {
    RESNET_CHECK(d >= 0, who << ": expected non-negative dims, found " << d);
    RESNET_CHECK(d == 0 || numel <= std::numeric_limits<int64_t>::max() / d,
                 who << ": the product of the dims overflows");
    numel *= d;
    shape.push_back(d);
  }
  return shape;
}

// Checks that the file holds exactly `numel` elements of `element_size` bytes, in
// raw_data or in the typed field (`typed_size` values named `typed_name`). Runs before any
// allocation: dims are whatever a header claims, the data is what the file really holds.
void check_count(const onnx::TensorProto& t, const Shape& shape, int64_t numel, size_t element_size,
                 int typed_size, const char* typed_name, const std::string& who) {
  if (t.has_raw_data()) {
    RESNET_CHECK(typed_size == 0, who << ": expected raw_data or " << typed_name << ", found both");
    const size_t bytes = t.raw_data().size();
    RESNET_CHECK(bytes % element_size == 0 && static_cast<uint64_t>(numel) == bytes / element_size,
                 who << ": dims " << shape_str(shape) << " hold " << numel
                     << " elements, raw_data holds " << bytes << " bytes");
  } else {
    RESNET_CHECK(static_cast<int64_t>(typed_size) == numel,
                 who << ": dims " << shape_str(shape) << " hold " << numel << " elements, "
                     << typed_name << " holds " << typed_size);
  }
}

// Fills `dst` from raw_data (little-endian as ONNX stores it; this code targets
// little-endian hosts) or from the typed field, after check_count.
template <typename T, typename Field>
void copy_data(const onnx::TensorProto& t, const Field& typed, int64_t numel, T* dst) {
  if (t.has_raw_data()) {
    if (numel > 0) std::memcpy(dst, t.raw_data().data(), t.raw_data().size());
    return;
  }
  for (int64_t i = 0; i < numel; ++i) dst[i] = static_cast<T>(typed.Get(static_cast<int>(i)));
}

// Widens `count` little-endian integers of type T from raw bytes.
template <typename T>
void widen_raw(const std::string& raw, int64_t count, int64_t* dst) {
  for (int64_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    dst[i] = v;
  }
}

}  // namespace

Tensor decode_onnx_integers(const onnx::TensorProto& t, const std::string& who) {
  int64_t numel = 0;
  const Shape shape = checked_shape(t, who, numel);
  const int type = t.data_type();
  RESNET_CHECK(type == onnx::TensorProto_DataType_INT8 ||
                   type == onnx::TensorProto_DataType_UINT8 ||
                   type == onnx::TensorProto_DataType_INT32,
               who << ": expected INT8, UINT8 or INT32 integers, found " << onnx_dtype_name(type));
  const size_t size = type == onnx::TensorProto_DataType_INT32 ? 4 : 1;
  // ONNX keeps INT8, UINT8 and INT32 values in int32_data when not in raw_data.
  check_count(t, shape, numel, size, t.int32_data_size(), "int32_data", who);
  Tensor out(shape, DType::i64);
  int64_t* dst = out.i64();
  if (!t.has_raw_data()) {
    for (int64_t i = 0; i < numel; ++i) {
      const int32_t v = t.int32_data(static_cast<int>(i));
      const bool fits =
          type == onnx::TensorProto_DataType_INT32 ||
          (type == onnx::TensorProto_DataType_INT8 ? v >= -128 && v <= 127 : v >= 0 && v <= 255);
      RESNET_CHECK(fits, who << ": value " << v << " at " << i << " is out of range for "
                             << onnx_dtype_name(type));
      dst[i] = v;
    }
  } else if (type == onnx::TensorProto_DataType_INT8) {
    widen_raw<int8_t>(t.raw_data(), numel, dst);
  } else if (type == onnx::TensorProto_DataType_UINT8) {
    widen_raw<uint8_t>(t.raw_data(), numel, dst);
  } else {
    widen_raw<int32_t>(t.raw_data(), numel, dst);
  }
  return out;
}

Tensor decode_onnx_tensor(const onnx::TensorProto& t, const std::string& who) {
  int64_t numel = 0;
  const Shape shape = checked_shape(t, who, numel);
  switch (t.data_type()) {
    case onnx::TensorProto_DataType_FLOAT: {
      check_count(t, shape, numel, sizeof(float), t.float_data_size(), "float_data", who);
      Tensor out(shape, DType::f32);
      copy_data(t, t.float_data(), numel, out.f32());
      return out;
    }
    case onnx::TensorProto_DataType_INT64: {
      check_count(t, shape, numel, sizeof(int64_t), t.int64_data_size(), "int64_data", who);
      Tensor out(shape, DType::i64);
      copy_data(t, t.int64_data(), numel, out.i64());
      return out;
    }
    default:
      RESNET_FAIL(who << ": expected a FLOAT tensor (or INT64 for shapes, pads and slices), found "
                      << onnx_dtype_name(t.data_type()));
  }
}

}  // namespace resnet::io::detail
