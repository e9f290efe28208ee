#include "resnet/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "byte_values.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::io {

// Data is copied between the file and tensors without byte swapping.
static_assert(std::endian::native == std::endian::little,
              "safetensors io assumes a little-endian host");

namespace {

using Json = nlohmann::ordered_json;

// The reference implementation refuses headers over 100 MB; so do we, before reading one.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// A dtype as stored in the file, and the tensor dtype it is read into.
struct FileDType {
  const char* name;
  size_t size;
  DType dtype;
};

constexpr FileDType kFileDTypes[] = {
    {"F32", 4, DType::f32}, {"F64", 8, DType::f32}, {"F16", 2, DType::f32}, {"BF16", 2, DType::f32},
    {"I64", 8, DType::i64}, {"I32", 4, DType::i64}, {"I16", 2, DType::i64}, {"U32", 4, DType::i64},
    {"U16", 2, DType::i64}, {"I8", 1, DType::i8},   {"U8", 1, DType::u8},   {"BOOL", 1, DType::u8},
};

const FileDType* find_file_dtype(const std::string& name) {
  for (const FileDType& d : kFileDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string known_file_dtypes() {
  std::string s;
  for (const FileDType& d : kFileDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// Name in the file for a tensor dtype we write.
const char* file_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::i64:
      return "I64";
    case DType::i8:
      return "I8";
    case DType::u8:
      return "U8";
  }
  return "?";
}

// What the JSON value is, for "got ..." in messages.
std::string json_kind(const Json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) return v.dump();
  if (v.is_string()) return "a string";
  return std::string("a JSON ") + v.type_name();
}

struct Entry {
  std::string name;
  const FileDType* file_dtype = nullptr;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const Json& info) {
  Entry e;
  e.name = name;
  const std::string who = path + ": tensor '" + name + "'";
  RESNET_CHECK(
      info.is_object(),
      who << ": expected an object with dtype, shape and data_offsets, got " << json_kind(info));
  auto dtype = info.find("dtype");
  RESNET_CHECK(dtype != info.end() && dtype->is_string(),
               who << ": expected a string 'dtype', got "
                   << (dtype == info.end() ? "none" : json_kind(*dtype)));
  e.file_dtype = find_file_dtype(dtype->get<std::string>());
  RESNET_CHECK(e.file_dtype != nullptr, who << ": expected a dtype among " << known_file_dtypes()
                                            << ", got '" << dtype->get<std::string>() << "'");

  auto shape = info.find("shape");
  RESNET_CHECK(shape != info.end() && shape->is_array(),
               who << ": expected a 'shape' array, got "
                   << (shape == info.end() ? "none" : json_kind(*shape)));
  // Checked here rather than by shape_numel() so that the message names the file and tensor.
  uint64_t numel = 1;
  for (const Json& d : *shape) {
    RESNET_CHECK(
        d.is_number_unsigned() &&
            d.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
        who << ": expected non-negative integer dimensions in 'shape', got " << json_kind(d));
    uint64_t ud = d.get<uint64_t>();
    RESNET_CHECK(ud == 0 || numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                                         e.file_dtype->size / ud,
                 who << ": expected a shape whose byte size fits in 64 bits, got " << shape->dump()
                     << " overflowing it");
    numel *= ud;
    e.shape.push_back(static_cast<int64_t>(ud));
  }
  uint64_t nbytes = numel * e.file_dtype->size;

  auto offsets = info.find("data_offsets");
  RESNET_CHECK(offsets != info.end() && offsets->is_array() && offsets->size() == 2 &&
                   (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned(),
               who << ": expected 'data_offsets' [begin, end] of non-negative integers, got "
                   << (offsets == info.end() ? std::string("none") : offsets->dump()));
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  RESNET_CHECK(e.begin <= e.end && e.end - e.begin == nbytes,
               who << ": expected data_offsets spanning " << nbytes << " bytes ("
                   << e.file_dtype->name << " " << shape_str(e.shape) << "), got "
                   << offsets->dump());
  return e;
}

// Tensors must cover the data exactly once, in offset order (the reference implementation's
// rule): this one pass rejects overlaps, gaps and trailing bytes.
void check_tiling(const std::string& path, const std::vector<Entry>& entries, uint64_t data_size) {
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : sorted) {
    RESNET_CHECK(e->begin >= expected,
                 path << ": tensor '" << e->name << "': expected data_offsets starting at "
                      << expected << ", got [" << e->begin << ", " << e->end
                      << "], which overlap tensor '" << previous->name << "' [" << previous->begin
                      << ", " << previous->end << "]");
    RESNET_CHECK(e->begin == expected, path << ": tensor '" << e->name
                                            << "': expected data_offsets starting at " << expected
                                            << " (where the previous tensor ends), got ["
                                            << e->begin << ", " << e->end << "], leaving a gap");
    expected = e->end;
    previous = e;
  }
  RESNET_CHECK(expected == data_size, path << ": expected " << expected
                                           << " bytes of tensor data after the header, got "
                                           << data_size << " (trailing bytes)");
}

using detail::f16_to_f32;
using detail::load;

// Converts `raw` (the file's bytes for `e`) into `t`, whose dtype is e.file_dtype->dtype.
void convert(const std::string& path, const Entry& e, const std::vector<std::byte>& raw,
             Tensor& t) {
  const std::string name = e.file_dtype->name;
  const size_t size = e.file_dtype->size;
  const int64_t n = t.numel();
  if (t.dtype() == DType::i64) {
    int64_t* dst = t.i64();
    for (int64_t i = 0; i < n; ++i) {
      const std::byte* p = raw.data() + i * size;
      if (name == "I32")
        dst[i] = load<int32_t>(p);
      else if (name == "I16")
        dst[i] = load<int16_t>(p);
      else if (name == "U32")
        dst[i] = load<uint32_t>(p);
      else
        dst[i] = load<uint16_t>(p);
    }
    return;
  }
  float* dst = t.f32();
  for (int64_t i = 0; i < n; ++i) {
    const std::byte* p = raw.data() + i * size;
    if (name == "F16") {
      dst[i] = f16_to_f32(load<uint16_t>(p));
    } else if (name == "BF16") {
      // bf16 is the upper half of an f32.
      dst[i] = std::bit_cast<float>(static_cast<uint32_t>(load<uint16_t>(p)) << 16);
    } else {
      // Checked before the cast: converting an out-of-range double to float is undefined.
      double v = load<double>(p);
      RESNET_CHECK(!(std::fabs(v) > std::numeric_limits<float>::max()) || std::isinf(v),
                   path << ": tensor '" << e.name
                        << "': expected F64 values within the f32 range, got " << v << " at index "
                        << i);
      dst[i] = static_cast<float>(v);
    }
  }
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

SafetensorsFile read_safetensors(const std::string& path) {
  InputFile file(path);
  RESNET_CHECK(file.size() >= 8, path << ": truncated file: expected at least the 8-byte header "
                                      << "length, got " << file.size() << " bytes");
  unsigned char length_bytes[8];
  file.read_at(0, length_bytes, 8, "the header length");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length_bytes[i]) << (8 * i);
  RESNET_CHECK(header_size <= kMaxHeaderSize,
               path << ": expected a header length of at most " << kMaxHeaderSize << " bytes, got "
                    << header_size << " (corrupt or not a safetensors file)");
  RESNET_CHECK(header_size <= file.size() - 8,
               path << ": truncated file: expected a header of " << header_size << " bytes, got "
                    << file.size() - 8 << " bytes after the length");
  std::string text(header_size, '\0');
  file.read_at(8, text.data(), text.size(), "the JSON header");

  // ordered_json keeps the file's order but would silently keep only the last of two equal
  // keys; note duplicates of top-level keys as they are parsed.
  std::set<std::string> seen;
  std::string duplicate;
  Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, on_event);
  } catch (const nlohmann::json::exception& err) {
    RESNET_FAIL(path << ": expected a JSON header, got invalid JSON (corrupt or not a "
                     << "safetensors file): " << err.what());
  }
  RESNET_CHECK(header.is_object(),
               path << ": expected the JSON header to be an object, got " << json_kind(header));
  RESNET_CHECK(duplicate.empty(), path << ": expected unique keys in the JSON header, got '"
                                       << duplicate << "' twice");

  SafetensorsFile result;
  std::vector<Entry> entries;
  uint64_t data_offset = 8 + header_size;
  uint64_t data_size = file.size() - data_offset;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      RESNET_CHECK(value.is_object(), path << ": expected " << kMetadataKey
                                           << " to be an object of strings, got "
                                           << json_kind(value));
      for (const auto& [mkey, mvalue] : value.items()) {
        RESNET_CHECK(mvalue.is_string(), path << ": " << kMetadataKey << " '" << mkey
                                              << "': expected a string value, got "
                                              << json_kind(mvalue));
        result.metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(path, key, value);
    RESNET_CHECK(e.end <= data_size, path << ": tensor '" << key
                                          << "': expected data_offsets within the " << data_size
                                          << " bytes of data in the file, got [" << e.begin << ", "
                                          << e.end << "] (truncated or corrupt file)");
    entries.push_back(std::move(e));
  }
  check_tiling(path, entries, data_size);

  // Every size is now checked against the file, so allocating is safe.
  for (const Entry& e : entries) {
    Tensor t(e.shape, e.file_dtype->dtype);
    std::string what = "tensor '" + e.name + "'";
    if (t.nbytes() == e.end - e.begin) {
      // Same representation (F32, I64, I8, U8, BOOL): straight into the tensor.
      file.read_at(data_offset + e.begin, t.raw(), t.nbytes(), what);
    } else {
      std::vector<std::byte> raw(e.end - e.begin);
      file.read_at(data_offset + e.begin, raw.data(), raw.size(), what);
      convert(path, e, raw, t);
    }
    result.tensors.emplace_back(e.name, std::move(t));
  }
  return result;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    RESNET_CHECK(!name.empty() && name != kMetadataKey,
                 path << ": expected a tensor name other than '' and '" << kMetadataKey
                      << "', got '" << name << "'");
    RESNET_CHECK(!header.contains(name),
                 path << ": expected unique tensor names, got '" << name << "' twice");
    RESNET_CHECK(t.defined(), path << ": tensor '" << name << "': expected a defined tensor, "
                                   << "got an empty one");
    uint64_t end = offset + t.nbytes();
    header[name] = {{"dtype", file_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& err) {
    RESNET_FAIL(path << ": expected UTF-8 tensor names and metadata, got " << err.what());
  }
  // Spaces up to a multiple of 8, as the reference writer does, so that the data starts
  // 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);

  AtomicFileWriter writer(path);
  writer.write(length, sizeof(length));
  writer.write(text);
  for (const auto& [name, t] : tensors) writer.write(t.raw(), t.nbytes());
  writer.commit();
}

}  // namespace resnet::io
