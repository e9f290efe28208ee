#pragma once
// Writing safetensors files in dtypes our writer does not produce (F64, F16, BF16), as
// other tools write them, to test what the reader and the state_dict loader make of them.

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "resnet/tensor/tensor.h"

namespace resnet::testing {

struct RawTensor {
  std::string name;
  std::string dtype;  // as the file names it: "F64", "F16", ...
  Shape shape;
  std::string bytes;  // little-endian data
};

inline void write_raw_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                                  const nlohmann::ordered_json& metadata = nullptr) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  out << text;
  for (const RawTensor& t : tensors) out << t.bytes;
  if (!out) throw std::runtime_error("cannot write " + path);
}

template <typename T>
void append_le(std::string& bytes, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // the tests run on little-endian hosts only
  bytes.append(raw, sizeof(T));
}

// f32 values converted as a user's tools would store them, and the f32 each becomes again:
// F64 exactly; BF16 keeps the upper 16 bits (truncated, so the expected value is exact);
// F16 keeps 10 mantissa bits (truncated) of normal values and flushes |x| < 2^-14 to a
// signed zero. Values must lie within F16's range for F16.
struct Converted {
  std::string bytes;
  std::vector<float> expected;
};

inline Converted convert_floats(const Tensor& t, const std::string& dtype) {
  Converted c;
  const float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float x = p[i];
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    if (dtype == "F64") {
      append_le<double>(c.bytes, static_cast<double>(x));
      c.expected.push_back(x);
    } else if (dtype == "BF16") {
      append_le<uint16_t>(c.bytes, static_cast<uint16_t>(bits >> 16));
      c.expected.push_back(std::bit_cast<float>(bits & 0xffff0000u));
    } else if (dtype == "F16") {
      const uint32_t sign = bits >> 31;
      const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127;
      if (exponent > 15) throw std::invalid_argument("convert_floats: beyond F16's range");
      if (exponent < -14) {
        append_le<uint16_t>(c.bytes, static_cast<uint16_t>(sign << 15));
        c.expected.push_back(sign ? -0.0f : 0.0f);
      } else {
        const uint32_t mantissa = (bits >> 13) & 0x3ff;
        append_le<uint16_t>(
            c.bytes, static_cast<uint16_t>(
                         (sign << 15) | (static_cast<uint32_t>(exponent + 15) << 10) | mantissa));
        c.expected.push_back(std::bit_cast<float>(bits & 0xffffe000u));
      }
    } else {
      throw std::invalid_argument("convert_floats: unknown dtype " + dtype);
    }
  }
  return c;
}

}  // namespace resnet::testing
