#pragma once
// .safetensors files: an 8-byte little-endian header length N, N bytes of JSON, then the data.
// The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data) and may hold "__metadata__", a map of strings.
//
// Reading keeps the tensors in the order of the JSON header (for files written by us or by
// the reference implementation, that is also data order). dtypes: F32 as is; F64, F16 and
// BF16 converted to f32 (a finite F64 beyond the f32 range is an error); I64 as i64; I32,
// I16, U32 and U16 widened to i64; I8, U8 as i8, u8; BOOL as u8. Anything else (F8_*, U64,
// complex) is refused naming the dtype. As in the reference implementation, the tensors must
// tile the data exactly: sorted by offset, each starts where the previous one ends, and the
// last ends at the end of the file; so overlaps, gaps and trailing bytes are all errors. Every
// size in the header is checked against the real file size before anything is allocated.
//
// Writing: f32 as F32, bf16 as BF16, i64 as I64, i8 as I8, u8 as U8, in the order given, the
// header padded with spaces to a multiple of 8 bytes. The file is replaced atomically (see
// atomic_file.h).
//
// Every error is a resnet::Error whose message starts with the path (and names the tensor).

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::io {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;          // "__metadata__", empty if absent

  // The tensor called `name`, or nullptr.
  const Tensor* find(const std::string& name) const;
};

SafetensorsFile read_safetensors(const std::string& path);

// Names must be unique, non-empty and not "__metadata__"; tensors must be defined.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace resnet::io
