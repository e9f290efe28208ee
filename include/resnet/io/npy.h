#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Reading: the array must be little-endian (or single-byte) and in C order. '<f4' is read
// as is; the other numeric dtypes are converted to f32: '<f8' and '<f2' by rounding (a finite
// f64 beyond the f32 range is an error), integers and '|b1' only when f32 holds the value
// exactly (else an error naming the value: read them with NpyIntegers::to_i64 instead).
// Refused, with a message naming the dtype found: big-endian, complex, object, strings,
// structured and datetime dtypes, and fortran_order True. The data must be exactly
// numel * itemsize bytes; a shorter or longer file is an error.
//
// Writing: format 1.0 (2.0 only if the header would not fit), header padded with spaces to a
// 64-byte boundary as NumPy does; f32 as '<f4', i64 as '<i8', u8 as '|u1' (or '|b1', see NpyBytes),
// i8 as '|i1'.
// The file is replaced atomically (see atomic_file.h).
//
// Every error is a resnet::Error whose message starts with the path.

#include <string>

#include "resnet/tensor/tensor.h"

namespace resnet::io {

// What read_npy makes of integer (and bool) arrays.
enum class NpyIntegers {
  to_f32,  // f32 tensor; every value must be exactly representable in f32
  to_i64,  // i64 tensor ('<u8' values must fit in int64)
};

Tensor read_npy(const std::string& path, NpyIntegers integers = NpyIntegers::to_f32);

// How write_npy writes a u8 tensor.
enum class NpyBytes {
  as_u8,    // '|u1'
  as_bool,  // '|b1' (ONNX BOOL, a Dropout's mask): every value must be 0 or 1
};

// `t` must be defined and of dtype f32, i64, u8 or i8.
void write_npy(const std::string& path, const Tensor& t, NpyBytes bytes = NpyBytes::as_u8);

}  // namespace resnet::io
