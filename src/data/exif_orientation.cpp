#include "exif_orientation.h"

#include <cmath>
#include <cstring>
#include <utility>

namespace resnet::data::detail {

namespace {

constexpr uint16_t kOrientationTag = 0x0112;

class TiffBytes {
 public:
  TiffBytes(const uint8_t* data, size_t size, bool big_endian)
      : data_(data), size_(size), big_endian_(big_endian) {}

  bool has(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }
  uint64_t uint(uint64_t offset, int bytes) const {  // caller checked has(offset, bytes)
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      const uint8_t b = data_[offset + static_cast<uint64_t>(big_endian_ ? i : bytes - 1 - i)];
      v = (v << 8) | b;
    }
    return v;
  }
  template <typename Signed>
  int64_t sint(uint64_t offset) const {
    return static_cast<Signed>(uint(offset, sizeof(Signed)));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  bool big_endian_;
};

// Bytes per value of each TIFF field type Pillow reads; 0 for a type it skips.
int type_size(uint16_t type) {
  switch (type) {
    case 1:  // BYTE
    case 2:  // ASCII
    case 6:  // SBYTE
    case 7:  // UNDEFINED
      return 1;
    case 3:  // SHORT
    case 8:  // SSHORT
      return 2;
    case 4:   // LONG
    case 9:   // SLONG
    case 11:  // FLOAT
    case 13:  // IFD
      return 4;
    case 5:   // RATIONAL
    case 10:  // SRATIONAL
    case 12:  // DOUBLE
    case 16:  // LONG8
    case 17:  // SLONG8
    case 18:  // IFD8
      return 8;
    default:
      return 0;
  }
}

// The first value of an entry as Pillow would compare it with the keys 2..8 of
// exif_transpose's table; 0 when it is no number (BYTE, ASCII and UNDEFINED give bytes or
// text in Pillow) or not an integer.
int orientation_value(const TiffBytes& t, uint16_t type, uint64_t at) {
  double v = 0;
  switch (type) {
    case 3:
      v = static_cast<double>(t.uint(at, 2));
      break;
    case 4:
    case 13:
      v = static_cast<double>(t.uint(at, 4));
      break;
    case 16:
    case 18:
      v = static_cast<double>(t.uint(at, 8));
      break;
    case 6:
      v = static_cast<double>(t.sint<int8_t>(at));
      break;
    case 8:
      v = static_cast<double>(t.sint<int16_t>(at));
      break;
    case 9:
      v = static_cast<double>(t.sint<int32_t>(at));
      break;
    case 17:
      v = static_cast<double>(t.sint<int64_t>(at));
      break;
    case 5:
    case 10: {
      const bool sign = type == 10;
      const double num = sign ? t.sint<int32_t>(at) : static_cast<double>(t.uint(at, 4));
      const double den = sign ? t.sint<int32_t>(at + 4) : static_cast<double>(t.uint(at + 4, 4));
      if (den == 0) return 0;
      v = num / den;
      break;
    }
    case 11: {
      const uint32_t bits = static_cast<uint32_t>(t.uint(at, 4));
      float f;
      std::memcpy(&f, &bits, sizeof f);
      v = f;
      break;
    }
    case 12: {
      const uint64_t bits = t.uint(at, 8);
      std::memcpy(&v, &bits, sizeof v);
      break;
    }
    default:
      return 0;
  }
  return (v >= 1 && v <= 8 && v == std::floor(v)) ? static_cast<int>(v) : 0;
}

}  // namespace

int exif_orientation(const uint8_t* tiff, size_t size) {
  if (tiff == nullptr || size < 8) return 1;
  // Pillow's accepted TIFF prefixes (classic TIFF, either byte order, either magic order).
  static const char* const prefixes[] = {"MM\x00\x2a", "II\x2a\x00", "MM\x2a\x00", "II\x00\x2a"};
  bool known = false;
  for (const char* p : prefixes) known = known || std::memcmp(tiff, p, 4) == 0;
  if (!known) return 1;
  const TiffBytes t(tiff, size, tiff[0] == 'M');
  const uint64_t ifd = t.uint(4, 4);
  if (!t.has(ifd, 2)) return 1;
  const uint64_t entries = t.uint(ifd, 2);
  int orientation = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    const uint64_t entry = ifd + 2 + 12 * i;
    if (!t.has(entry, 12)) break;
    const auto tag = static_cast<uint16_t>(t.uint(entry, 2));
    const auto type = static_cast<uint16_t>(t.uint(entry + 2, 2));
    const uint64_t count = t.uint(entry + 4, 4);
    const int unit = type_size(type);
    if (unit == 0 || count == 0) continue;
    const uint64_t bytes = count * static_cast<uint64_t>(unit);  // < 2^35, no overflow
    uint64_t at = entry + 8;
    if (bytes > 4) {
      at = t.uint(entry + 8, 4);
      if (!t.has(at, bytes)) break;  // Pillow stops reading the IFD here
    }
    if (tag == kOrientationTag) orientation = orientation_value(t, type, at);
  }
  return orientation >= 2 ? orientation : 1;
}

void apply_orientation(RawImage& image, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  const int64_t h = image.height, w = image.width, c = image.channels;
  const bool swap = orientation_swaps_axes(orientation);
  const int64_t out_h = swap ? w : h, out_w = swap ? h : w;
  std::vector<uint8_t> out(image.hwc.size());
  for (int64_t y = 0; y < out_h; ++y) {
    for (int64_t x = 0; x < out_w; ++x) {
      // The source pixel that lands at (y, x), per Pillow's Image.transpose methods.
      int64_t sy = y, sx = x;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sy = h - 1 - y;
          sx = w - 1 - x;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sy = x;
          sx = y;
          break;
        case 6:
          sy = h - 1 - x;
          sx = y;
          break;
        case 7:
          sy = h - 1 - x;
          sx = w - 1 - y;
          break;
        case 8:
          sy = x;
          sx = w - 1 - y;
          break;
      }
      std::memcpy(&out[static_cast<size_t>((y * out_w + x) * c)],
                  &image.hwc[static_cast<size_t>((sy * w + sx) * c)], static_cast<size_t>(c));
    }
  }
  image.hwc = std::move(out);
  image.height = out_h;
  image.width = out_w;
}

}  // namespace resnet::data::detail
