#pragma once
// Helpers for the image-codec tests: PNG files built chunk by chunk (for hostile headers,
// ancillary chunks and bombs) and JPEG files with an EXIF segment spliced in.

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data_test_util.h"

namespace resnet::testing {

inline std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string td = type + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size())));
  return be_u32(static_cast<uint32_t>(data.size())) + td + be_u32(crc);
}

inline std::string png_signature() {
  return std::string("\x89PNG\r\n\x1a\n", 8);
}

// IHDR of an 8-bit (or `depth`) image of `color_type`, not interlaced.
inline std::string png_ihdr(uint32_t width, uint32_t height, int color_type = 0, int depth = 8) {
  std::string d = be_u32(width) + be_u32(height);
  d += static_cast<char>(depth);
  d += static_cast<char>(color_type);
  d += std::string(3, '\0');
  return png_chunk("IHDR", d);
}

// A zlib stream of `prefix` followed by `zeros` zero bytes, deflated in pieces so that a
// stream that inflates to hundreds of megabytes costs only a small buffer to make.
inline std::string deflate_with_zeros(const std::string& prefix, uint64_t zeros) {
  z_stream z{};
  if (deflateInit(&z, 9) != Z_OK) throw std::runtime_error("deflateInit");
  std::string out;
  std::vector<unsigned char> buf(1 << 16);
  std::string zero_block(1 << 20, '\0');
  auto pump = [&](const std::string& in, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    do {
      z.next_out = buf.data();
      z.avail_out = static_cast<uInt>(buf.size());
      deflate(&z, flush);
      out.append(reinterpret_cast<char*>(buf.data()), buf.size() - z.avail_out);
    } while (z.avail_out == 0 || (flush == Z_FINISH && z.avail_in > 0));
  };
  pump(prefix, Z_NO_FLUSH);
  for (; zeros >= zero_block.size(); zeros -= zero_block.size()) pump(zero_block, Z_NO_FLUSH);
  pump(zero_block.substr(0, zeros), Z_FINISH);
  deflateEnd(&z);
  return out;
}

// Scanlines (filter byte 0) of a gray 8-bit image whose pixel (y, x) is y * 16 + x.
inline std::string gray_scanlines(uint32_t width, uint32_t height) {
  std::string s;
  for (uint32_t y = 0; y < height; ++y) {
    s += '\0';
    for (uint32_t x = 0; x < width; ++x) s += static_cast<char>((y * 16 + x) & 0xff);
  }
  return s;
}

// A JPEG's bytes with an APP1 segment holding `payload` right after the SOI marker.
inline std::string with_app1(const std::string& jpeg, const std::string& payload) {
  const auto n = static_cast<uint32_t>(payload.size() + 2);
  std::string seg = "\xff\xe1";
  seg += static_cast<char>(n >> 8);
  seg += static_cast<char>(n & 0xff);
  return jpeg.substr(0, 2) + seg + payload + jpeg.substr(2);
}

// Little-endian TIFF bytes: header pointing at an IFD at offset 8 with `entries` (each 12
// bytes, already encoded), the count written as `count` (the real number unless given).
inline std::string tiff_le(const std::vector<std::string>& entries, int64_t count = -1) {
  std::string s = std::string("II\x2a\0", 4) + le_bytes<uint32_t>(8);
  s += le_bytes<uint16_t>(static_cast<uint16_t>(count < 0 ? entries.size() : count));
  for (const auto& e : entries) s += e;
  return s + le_bytes<uint32_t>(0);
}

// One little-endian IFD entry: tag, type, count, and the 4-byte value/offset field.
inline std::string ifd_entry(uint16_t tag, uint16_t type, uint32_t count, uint32_t value) {
  return le_bytes(tag) + le_bytes(type) + le_bytes(count) + le_bytes(value);
}

}  // namespace resnet::testing
