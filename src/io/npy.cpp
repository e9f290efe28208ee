#include "resnet/io/npy.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "byte_values.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::io {

// Data is copied between the file and tensors without byte swapping.
static_assert(std::endian::native == std::endian::little, "npy io assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// NumPy's own loader refuses headers over 10000 bytes by default; a real header is ~100
// bytes, so anything beyond this is a corrupt or hostile length field.
constexpr uint64_t kMaxHeaderSize = 1 << 20;
// Nesting allowed in header values: a structured descr nests two deep.
constexpr int kMaxDepth = 8;

// Quotes `text` for a one-line message: non-printable bytes as \xNN, cut at `limit`.
std::string quoted(std::string_view text, size_t limit = 80) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (text.size() > limit) out += "...";
  return out + "'";
}

// A value of the Python literal subset that NumPy writes in headers.
struct PyValue {
  enum class Kind { string, boolean, none, integer, tuple, list };
  Kind kind = Kind::none;
  std::string str;
  bool boolean = false;
  int64_t integer = 0;
  std::vector<PyValue> items;  // tuple or list
};

const char* kind_name(PyValue::Kind kind) {
  switch (kind) {
    case PyValue::Kind::string:
      return "a string";
    case PyValue::Kind::boolean:
      return "a bool";
    case PyValue::Kind::none:
      return "None";
    case PyValue::Kind::integer:
      return "an integer";
    case PyValue::Kind::tuple:
      return "a tuple";
    case PyValue::Kind::list:
      return "a list";
  }
  return "?";
}

// Parses the header dict, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  std::vector<std::pair<std::string, PyValue>> parse_dict() {
    std::vector<std::pair<std::string, PyValue>> entries;
    expect('{');
    while (peek() != '}') {
      PyValue key = parse_value(0);
      if (key.kind != PyValue::Kind::string) fail("a string key", kind_name(key.kind));
      expect(':');
      entries.emplace_back(key.str, parse_value(0));
      if (peek() != ',') break;
      ++pos_;
    }
    expect('}');
    if (peek() != '\0') fail("the end of the header after '}'", quoted(text_.substr(pos_), 20));
    return entries;
  }

 private:
  [[noreturn]] void fail(std::string_view expected, std::string_view got) const {
    RESNET_FAIL(path_ << ": bad npy header dict: expected " << expected << " at offset " << pos_
                      << ", got " << got << " in " << quoted(text_));
  }

  // Next non-space character without consuming it; '\0' at the end.
  char peek() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  std::string got_here() {
    char c = peek();
    return c == '\0' ? std::string("the end of the header") : quoted(text_.substr(pos_, 1));
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("'") + c + "'", got_here());
    ++pos_;
  }

  PyValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("at most " + std::to_string(kMaxDepth) + " nested levels", "more");
    char c = peek();
    PyValue v;
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::string;
      size_t end = text_.find(c, pos_ + 1);
      if (end == std::string_view::npos) fail("a closing quote", "the end of the header");
      v.str = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
    } else if (c == '(' || c == '[') {
      v.kind = c == '(' ? PyValue::Kind::tuple : PyValue::Kind::list;
      char close = c == '(' ? ')' : ']';
      ++pos_;
      while (peek() != close) {
        v.items.push_back(parse_value(depth + 1));
        if (peek() != ',') break;
        ++pos_;
      }
      expect(close);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = PyValue::Kind::integer;
      v.integer = parse_integer();
    } else if (text_.substr(pos_, 4) == "True" || text_.substr(pos_, 5) == "False" ||
               text_.substr(pos_, 4) == "None") {
      v.kind = text_[pos_] == 'N' ? PyValue::Kind::none : PyValue::Kind::boolean;
      v.boolean = text_[pos_] == 'T';
      pos_ += text_[pos_] == 'F' ? 5 : 4;
    } else {
      fail("a string, integer, bool, None, tuple or list", got_here());
    }
    return v;
  }

  int64_t parse_integer() {
    bool negative = text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') fail("a digit", got_here());
    uint64_t magnitude = 0;
    const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + negative;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (magnitude > (limit - digit) / 10) fail("an integer that fits in 64 bits", "a larger one");
      magnitude = magnitude * 10 + digit;
      ++pos_;
    }
    // Python 2 NumPy wrote shapes as "(3L, 4L)".
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;
    if (negative) return magnitude == 0 ? 0 : -static_cast<int64_t>(magnitude - 1) - 1;
    return static_cast<int64_t>(magnitude);
  }

  const std::string& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

struct NpyDType {
  std::string descr;
  char kind = 'f';  // 'f' float, 'i' signed, 'u' unsigned, 'b' bool
  size_t size = 4;
};

NpyDType parse_descr(const std::string& path, const std::string& descr) {
  constexpr const char* kKnown =
      "<f4, <f8, <f2, <i8, <i4, <i2, |i1, <u8, <u4, <u2, |u1 or |b1, little-endian";
  NpyDType dt;
  dt.descr = descr;
  bool ok = descr.size() == 3 &&
            (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=');
  if (ok) {
    dt.kind = descr[1];
    dt.size = static_cast<size_t>(descr[2] - '0');
    switch (dt.kind) {
      case 'f':
        ok = dt.size == 2 || dt.size == 4 || dt.size == 8;
        break;
      case 'i':
      case 'u':
        ok = dt.size == 1 || dt.size == 2 || dt.size == 4 || dt.size == 8;
        break;
      case 'b':
        ok = dt.size == 1;
        break;
      default:
        ok = false;
    }
  }
  RESNET_CHECK(
      ok, path << ": expected a numeric dtype (" << kKnown << "), got dtype " << quoted(descr));
  // '=' is native order, little-endian here; byte order is moot for single bytes.
  RESNET_CHECK(descr[0] != '>' || dt.size == 1,
               path << ": expected a little-endian dtype, got big-endian dtype " << quoted(descr));
  return dt;
}

struct NpyHeader {
  NpyDType dtype;
  Shape shape;
  int64_t numel = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
};

NpyHeader read_header(InputFile& file) {
  const std::string& path = file.path();
  char preamble[12] = {};
  size_t available = file.size() < 8 ? static_cast<size_t>(file.size()) : 8;
  file.read_at(0, preamble, available, "the npy magic");
  RESNET_CHECK(available >= kMagicSize && std::memcmp(preamble, kMagic, kMagicSize) == 0,
               path << ": expected the npy magic '\\x93NUMPY', got "
                    << (available == 0 ? std::string("an empty file")
                                       : quoted(std::string_view(
                                             preamble, std::min<size_t>(available, kMagicSize)))));
  RESNET_CHECK(available == 8, path << ": truncated file: expected an 8-byte npy preamble, got "
                                    << available << " bytes");
  int major = static_cast<unsigned char>(preamble[6]);
  int minor = static_cast<unsigned char>(preamble[7]);
  RESNET_CHECK(
      minor == 0 && major >= 1 && major <= 3,
      path << ": expected npy format version 1.0, 2.0 or 3.0, got " << major << "." << minor);
  // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4.
  size_t length_size = major == 1 ? 2 : 4;
  file.read_at(8, preamble + 8, length_size, "the npy header length");
  uint64_t header_size = 0;
  for (size_t i = 0; i < length_size; ++i) {
    header_size |= static_cast<uint64_t>(static_cast<unsigned char>(preamble[8 + i])) << (8 * i);
  }
  uint64_t header_offset = 8 + length_size;
  RESNET_CHECK(header_size <= kMaxHeaderSize,
               path << ": expected an npy header of at most " << kMaxHeaderSize
                    << " bytes, got a header length of " << header_size);
  RESNET_CHECK(header_size <= file.size() - header_offset,
               path << ": truncated file: expected an npy header of " << header_size
                    << " bytes, got " << file.size() - header_offset
                    << " bytes after the preamble");
  std::string text(header_size, '\0');
  file.read_at(header_offset, text.data(), text.size(), "the npy header");
  // Drop the padding (spaces and a final '\n') so that messages quote only the dict.
  text.resize(text.find_last_not_of(" \t\r\n") + 1);

  NpyHeader header;
  header.data_offset = header_offset + header_size;
  bool have_descr = false, have_order = false, have_shape = false;
  for (auto& [key, value] : HeaderParser(path, text).parse_dict()) {
    if (key == "descr" && !have_descr) {
      RESNET_CHECK(value.kind == PyValue::Kind::string,
                   path << ": expected 'descr' to be a dtype string like '<f4', got "
                        << (value.kind == PyValue::Kind::list ? "a structured dtype"
                                                              : kind_name(value.kind)));
      header.dtype = parse_descr(path, value.str);
      have_descr = true;
    } else if (key == "fortran_order" && !have_order) {
      RESNET_CHECK(
          value.kind == PyValue::Kind::boolean,
          path << ": expected 'fortran_order' to be a bool, got " << kind_name(value.kind));
      RESNET_CHECK(!value.boolean, path << ": expected fortran_order False (C order), got True; "
                                        << "save np.ascontiguousarray(a) instead");
      have_order = true;
    } else if (key == "shape" && !have_shape) {
      RESNET_CHECK(value.kind == PyValue::Kind::tuple,
                   path << ": expected 'shape' to be a tuple, got " << kind_name(value.kind));
      for (const PyValue& d : value.items) {
        RESNET_CHECK(d.kind == PyValue::Kind::integer && d.integer >= 0,
                     path << ": expected non-negative integer dimensions in 'shape', got "
                          << (d.kind == PyValue::Kind::integer ? std::to_string(d.integer)
                                                               : std::string(kind_name(d.kind))));
        header.shape.push_back(d.integer);
      }
      have_shape = true;
    } else {
      RESNET_FAIL(path << ": expected npy header keys 'descr', 'fortran_order' and 'shape' once "
                       << "each, got " << quoted(key) << " in " << quoted(text));
    }
  }
  RESNET_CHECK(have_descr && have_order && have_shape,
               path << ": expected npy header keys 'descr', 'fortran_order' and 'shape', got "
                    << quoted(text));

  // Checked here rather than by shape_numel() so that the message names the file.
  uint64_t numel = 1;
  for (int64_t d : header.shape) {
    uint64_t ud = static_cast<uint64_t>(d);
    RESNET_CHECK(ud == 0 || numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                                         header.dtype.size / ud,
                 path << ": expected a shape whose byte size fits in 64 bits, got shape "
                      << shape_str(header.shape) << " overflowing it");
    numel *= ud;
  }
  header.numel = static_cast<int64_t>(numel);
  header.data_size = numel * header.dtype.size;
  uint64_t available_data = file.size() - header.data_offset;
  RESNET_CHECK(available_data >= header.data_size,
               path << ": truncated file: expected " << header.data_size << " bytes of data for "
                    << quoted(header.dtype.descr) << " shape " << shape_str(header.shape)
                    << ", got " << available_data);
  RESNET_CHECK(available_data == header.data_size,
               path << ": expected " << header.data_size << " bytes of data for "
                    << quoted(header.dtype.descr) << " shape " << shape_str(header.shape)
                    << ", got " << available_data << " (trailing bytes)");
  return header;
}

using detail::f16_to_f32;
using detail::load;

// Element i of the raw data as a 64-bit integer (kind 'i', 'u' or 'b'). Unsigned 64-bit
// values beyond int64 are reported through `too_big`.
int64_t load_integer(const std::byte* p, const NpyDType& dt, bool* too_big) {
  if (dt.kind == 'u' || dt.kind == 'b') {
    switch (dt.size) {
      case 1:
        return load<uint8_t>(p);
      case 2:
        return load<uint16_t>(p);
      case 4:
        return load<uint32_t>(p);
      default: {
        uint64_t v = load<uint64_t>(p);
        *too_big = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        return static_cast<int64_t>(v);
      }
    }
  }
  switch (dt.size) {
    case 1:
      return load<int8_t>(p);
    case 2:
      return load<int16_t>(p);
    case 4:
      return load<int32_t>(p);
    default:
      return load<int64_t>(p);
  }
}

Tensor convert(const std::string& path, const NpyHeader& h, const std::vector<std::byte>& raw,
               NpyIntegers integers) {
  const NpyDType& dt = h.dtype;
  bool is_integer = dt.kind != 'f';
  if (is_integer && integers == NpyIntegers::to_i64) {
    Tensor t(h.shape, DType::i64);
    int64_t* dst = t.i64();
    for (int64_t i = 0; i < h.numel; ++i) {
      bool too_big = false;
      dst[i] = load_integer(raw.data() + i * dt.size, dt, &too_big);
      RESNET_CHECK(!too_big, path << ": expected '<u8' values that fit in int64, got "
                                  << load<uint64_t>(raw.data() + i * dt.size) << " at index " << i);
    }
    return t;
  }
  Tensor t(h.shape, DType::f32);
  float* dst = t.f32();
  for (int64_t i = 0; i < h.numel; ++i) {
    const std::byte* p = raw.data() + i * dt.size;
    if (dt.kind == 'f' && dt.size == 2) {
      dst[i] = f16_to_f32(load<uint16_t>(p));
    } else if (dt.kind == 'f') {
      // Checked before the cast: converting an out-of-range double to float is undefined.
      double v = load<double>(p);
      RESNET_CHECK(
          !(std::fabs(v) > std::numeric_limits<float>::max()) || std::isinf(v),
          path << ": expected '<f8' values within the f32 range, got " << v << " at index " << i);
      dst[i] = static_cast<float>(v);
    } else {
      // Refuse, rather than round, integers f32 cannot hold: labels or ids silently
      // changed by one would be a wrong number nobody notices.
      bool too_big = false;
      int64_t v = load_integer(p, dt, &too_big);
      float f = static_cast<float>(too_big ? static_cast<double>(load<uint64_t>(p)) : v);
      double back = static_cast<double>(f);
      bool exact = !too_big && back >= -9223372036854775808.0 && back < 9223372036854775808.0 &&
                   static_cast<int64_t>(back) == v;
      RESNET_CHECK(exact, path << ": expected " << quoted(dt.descr)
                               << " values exactly representable in f32, got "
                               << (too_big ? std::to_string(load<uint64_t>(p)) : std::to_string(v))
                               << " at index " << i << "; read with NpyIntegers::to_i64");
      dst[i] = f;
    }
  }
  return t;
}

std::string shape_repr(const Shape& shape) {
  // Python tuple syntax: "()", "(3,)", "(3, 5)".
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

Tensor read_npy(const std::string& path, NpyIntegers integers) {
  InputFile file(path);
  NpyHeader h = read_header(file);
  // The common cases go straight into the tensor's storage, without a second copy.
  bool f32_as_is = h.dtype.kind == 'f' && h.dtype.size == 4;
  bool i64_as_is = h.dtype.kind == 'i' && h.dtype.size == 8 && integers == NpyIntegers::to_i64;
  if (f32_as_is || i64_as_is) {
    Tensor t(h.shape, f32_as_is ? DType::f32 : DType::i64);
    file.read_at(h.data_offset, t.raw(), t.nbytes(), "the array data");
    return t;
  }
  std::vector<std::byte> raw(h.data_size);
  file.read_at(h.data_offset, raw.data(), raw.size(), "the array data");
  return convert(path, h, raw, integers);
}

void write_npy(const std::string& path, const Tensor& t, NpyBytes bytes) {
  RESNET_CHECK(t.defined(), path << ": expected a defined tensor to write, got an empty one");
  const char* descr = nullptr;
  if (bytes == NpyBytes::as_bool) {
    RESNET_CHECK(t.dtype() == DType::u8, path << ": expected a u8 tensor of 0 and 1 to write as "
                                              << "bool, got " << dtype_name(t.dtype()));
    const uint8_t* v = static_cast<const uint8_t*>(t.raw());
    for (int64_t i = 0; i < t.numel(); ++i)
      RESNET_CHECK(v[i] <= 1, path << ": expected 0 or 1 to write as bool, found "
                                   << static_cast<int>(v[i]) << " at element " << i);
  }
  switch (t.dtype()) {
    case DType::f32:
      descr = "<f4";
      break;
    case DType::i64:
      descr = "<i8";
      break;
    case DType::u8:
      descr = bytes == NpyBytes::as_bool ? "|b1" : "|u1";
      break;
    case DType::i8:
      descr = "|i1";
      break;
    case DType::bf16:
      break;
  }
  RESNET_CHECK(descr != nullptr, path << ": expected a tensor of dtype f32, i64, u8 or i8 for "
                                      << "npy, got " << dtype_name(t.dtype()));
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape_repr(t.shape()) + ", }";
  // Laid out exactly as np.save (NumPy >= 1.24) does, so that our files compare equal to
  // NumPy's byte for byte: room for the first dimension to grow to 21 digits, then spaces
  // and '\n' up to a 64-byte boundary (a full 64 when already aligned, as NumPy computes it),
  // in format 1.0 unless the header outgrows its 16-bit length.
  if (!t.shape().empty()) header.append(21 - std::to_string(t.shape()[0]).size(), ' ');
  bool v1 = header.size() + 1 + 64 <= 0xffff;
  size_t preamble_size = v1 ? 10 : 12;
  header.append(64 - (preamble_size + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string preamble(kMagic, kMagicSize);
  preamble += static_cast<char>(v1 ? 1 : 2);
  preamble += '\0';
  for (size_t i = 0; i < preamble_size - 8; ++i) {
    preamble += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  }
  AtomicFileWriter writer(path);
  writer.write(preamble);
  writer.write(header);
  writer.write(t.raw(), t.nbytes());
  writer.commit();
}

}  // namespace resnet::io
