#include "resnet/io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>

#include "io_test_util.h"
#include "resnet/core/error.h"

namespace resnet::io {
namespace {

using testing::le_bytes;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

// A .safetensors file built by hand: u64 header length, the JSON padded with spaces to a
// multiple of 8, then `data`.
std::string st_bytes(std::string json, const std::string& data) {
  json.append((8 - json.size() % 8) % 8, ' ');
  return le_bytes<uint64_t>(json.size()) + json + data;
}

// The JSON of one tensor entry.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A JSON object of the given entries.
std::string object(std::initializer_list<std::string> entries) {
  std::string s = "{";
  for (const std::string& e : entries) {
    if (s.size() > 1) s += ",";
    s += e;
  }
  return s + "}";
}

std::vector<float> floats(const Tensor& t) {
  return {t.values().begin(), t.values().end()};
}

class SafetensorsTest : public ::testing::Test {
 protected:
  // Writes a one-tensor file whose entry is `info` (the JSON object of "w") over `data`.
  std::string write_one(const std::string& info, const std::string& data) {
    std::string path = dir_.file("one.safetensors");
    write_bytes(path, st_bytes("{\"w\":" + info + "}", data));
    return path;
  }

  TempDir dir_;
};

// --- round trips ---

TEST_F(SafetensorsTest, RoundTripMixedShapesDtypesAndMetadata) {
  Tensor odd({3, 5, 7, 9});
  for (int64_t i = 0; i < odd.numel(); ++i) odd.f32()[i] = std::sin(static_cast<float>(i));
  Tensor scalar = Tensor::full({}, -2.25f);
  Tensor tracked({}, DType::i64);
  tracked.i64()[0] = 123456789012345;
  Tensor ids({4}, DType::i64);
  for (int i = 0; i < 4; ++i) ids.i64()[i] = -i * (int64_t{1} << 40);
  Tensor bytes({3}, DType::u8);
  std::memcpy(bytes.raw(), "\x00\x7f\xff", 3);
  Tensor signed_bytes({2}, DType::i8);
  std::memcpy(signed_bytes.raw(), "\x80\x01", 2);
  Tensor half({2}, DType::bf16);
  std::memcpy(half.raw(), le_bytes<uint16_t>({0x3f80, 0xc040}).data(), 4);  // 1, -3

  std::vector<std::pair<std::string, Tensor>> tensors = {{"layer1.0.conv1.weight", odd},
                                                         {"scalar", scalar},
                                                         {"empty", Tensor({0})},
                                                         {"empty_mid", Tensor({2, 0, 3})},
                                                         {"bn1.num_batches_tracked", tracked},
                                                         {"ids", ids},
                                                         {"bytes", bytes},
                                                         {"signed", signed_bytes},
                                                         {"half", half}};
  std::map<std::string, std::string> metadata = {{"model", "resnet18"}, {"classes", "10"}};
  std::string path = dir_.file("rt.safetensors");
  write_safetensors(path, tensors, metadata);

  SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.metadata, metadata);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, tensors[i].first);
    EXPECT_EQ(f.tensors[i].second.shape(), tensors[i].second.shape()) << tensors[i].first;
  }
  EXPECT_EQ(std::memcmp(f.tensors[0].second.raw(), odd.raw(), odd.nbytes()), 0);
  EXPECT_EQ(f.find("scalar")->f32()[0], -2.25f);
  EXPECT_EQ(f.find("bn1.num_batches_tracked")->i64()[0], 123456789012345);
  EXPECT_EQ(std::memcmp(f.find("ids")->raw(), ids.raw(), ids.nbytes()), 0);
  EXPECT_EQ(f.find("bytes")->dtype(), DType::u8);
  EXPECT_EQ(std::memcmp(f.find("bytes")->raw(), "\x00\x7f\xff", 3), 0);
  EXPECT_EQ(f.find("signed")->dtype(), DType::i8);
  EXPECT_EQ(std::memcmp(f.find("signed")->raw(), "\x80\x01", 2), 0);
  // BF16 is written as BF16 and read back as f32.
  EXPECT_NE(read_bytes(path).find("\"half\":{\"dtype\":\"BF16\""), std::string::npos);
  EXPECT_EQ(floats(*f.find("half")), (std::vector<float>{1.f, -3.f}));
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST_F(SafetensorsTest, RoundTripNoTensors) {
  std::string path = dir_.file("none.safetensors");
  write_safetensors(path, {});
  EXPECT_EQ(read_bytes(path), le_bytes<uint64_t>(8) + "{}      ");
  SafetensorsFile f = read_safetensors(path);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
}

// --- byte-level cross-checks ---

// Built by hand in the reference layout (compact JSON, __metadata__ first, entries in data
// order, spaces to a multiple of 8): our writer must produce exactly these bytes and our
// reader must keep the JSON order "b" then "a".
TEST_F(SafetensorsTest, HandBuiltFileReadAndWrittenByteForByte) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}," + entry("b", "F32", "[2]", 0, 8) +
                     "," + entry("a", "I64", "[]", 8, 16) + "}";
  std::string data = le_bytes<float>({1.5f, -2.f}) + le_bytes<int64_t>(-42);
  std::string expected = st_bytes(json, data);
  ASSERT_EQ((expected.size() - data.size()) % 8, 0u);
  std::string path = dir_.file("hand.safetensors");
  write_bytes(path, expected);

  SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].first, "b");
  EXPECT_EQ(floats(f.tensors[0].second), (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(f.tensors[1].first, "a");
  EXPECT_EQ(f.tensors[1].second.i64()[0], -42);
  EXPECT_EQ(f.metadata.at("format"), "pt");

  std::string out = dir_.file("ours.safetensors");
  write_safetensors(out, f.tensors, f.metadata);
  EXPECT_EQ(read_bytes(out), expected);
}

TEST_F(SafetensorsTest, ReadsInJsonOrderNotDataOrder) {
  std::string json =
      object({entry("second", "F32", "[1]", 4, 8), entry("first", "F32", "[1]", 0, 4)});
  std::string path = dir_.file("order.safetensors");
  write_bytes(path, st_bytes(json, le_bytes<float>({1.f, 2.f})));
  SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].first, "second");
  EXPECT_EQ(f.tensors[0].second.f32()[0], 2.f);
  EXPECT_EQ(f.tensors[1].second.f32()[0], 1.f);
}

TEST_F(SafetensorsTest, ConvertsOtherDtypes) {
  const float inf = std::numeric_limits<float>::infinity();
  std::string data;
  std::string json = "{";
  auto add = [&](const std::string& name, const std::string& dtype, size_t count,
                 const std::string& bytes) {
    if (json.size() > 1) json += ",";
    json += entry(name, dtype, std::string("[") + std::to_string(count) + "]", data.size(),
                  data.size() + bytes.size());
    data += bytes;
  };
  // 1, -2, 65504 (largest f16), 2^-24 (smallest subnormal), -inf, -0.
  add("f16", "F16", 6, le_bytes<uint16_t>({0x3c00, 0xc000, 0x7bff, 0x0001, 0xfc00, 0x8000}));
  add("bf16", "BF16", 3, le_bytes<uint16_t>({0x3f80, 0xc040, 0x7f80}));  // 1, -3, inf
  add("f64", "F64", 2, le_bytes<double>({0.1, -1e30}));
  add("i32", "I32", 2, le_bytes<int32_t>({-5, 2147483647}));
  add("i16", "I16", 1, le_bytes<int16_t>({-32768}));
  add("u32", "U32", 1, le_bytes<uint32_t>({4294967295u}));
  add("u16", "U16", 1, le_bytes<uint16_t>({65535}));
  add("bool", "BOOL", 2, std::string("\x01\x00", 2));
  json += "}";
  std::string path = dir_.file("conv.safetensors");
  write_bytes(path, st_bytes(json, data));

  SafetensorsFile f = read_safetensors(path);
  std::vector<float> f16 = floats(*f.find("f16"));
  EXPECT_EQ(f16, (std::vector<float>{1.f, -2.f, 65504.f, std::ldexp(1.f, -24), -inf, -0.f}));
  EXPECT_TRUE(std::signbit(f16[5]));
  EXPECT_EQ(floats(*f.find("bf16")), (std::vector<float>{1.f, -3.f, inf}));
  EXPECT_EQ(floats(*f.find("f64")), (std::vector<float>{0.1f, -1e30f}));
  EXPECT_EQ(f.find("i32")->i64()[0], -5);
  EXPECT_EQ(f.find("i32")->i64()[1], 2147483647);
  EXPECT_EQ(f.find("i16")->i64()[0], -32768);
  EXPECT_EQ(f.find("u32")->i64()[0], 4294967295);
  EXPECT_EQ(f.find("u16")->i64()[0], 65535);
  EXPECT_EQ(f.find("bool")->dtype(), DType::u8);
  EXPECT_EQ(std::memcmp(f.find("bool")->raw(), "\x01\x00", 2), 0);
}

// The fixtures' state dicts were written by the Python side of the project (the reference
// layout, num_batches_tracked as I64): we read them, and writing them again gives the same
// bytes.
TEST_F(SafetensorsTest, ReadsAndRewritesPythonFixture) {
  std::string fixture = std::string(RESNET_FIXTURE_DIR) + "/block_3_3_2/weights.safetensors";
  if (!std::filesystem::exists(fixture)) GTEST_SKIP() << "no fixture " << fixture;
  SafetensorsFile f = read_safetensors(fixture);
  ASSERT_FALSE(f.tensors.empty());
  EXPECT_EQ(f.tensors[0].first, "conv1.weight");
  EXPECT_EQ(f.tensors[0].second.shape(), (Shape{3, 3, 3, 3}));
  const Tensor* tracked = f.find("bn1.num_batches_tracked");
  ASSERT_NE(tracked, nullptr);
  EXPECT_EQ(tracked->dtype(), DType::i64);
  EXPECT_EQ(tracked->shape(), Shape{});
  EXPECT_EQ(f.metadata.at("model"), "block:3,3,2");
  std::string path = dir_.file("weights.safetensors");
  write_safetensors(path, f.tensors, f.metadata);
  EXPECT_EQ(read_bytes(path), read_bytes(fixture));
}

// --- bad input: each names the file (and tensor) and says what was wrong ---

TEST_F(SafetensorsTest, ErrorMissingFile) {
  std::string path = dir_.file("nope.safetensors");
  EXPECT_IO_ERROR(read_safetensors(path), path, "existing file", "No such file");
}

TEST_F(SafetensorsTest, ErrorShorterThanLength) {
  std::string path = dir_.file("tiny.safetensors");
  write_bytes(path, "abc");
  EXPECT_IO_ERROR(read_safetensors(path), path, "truncated", "8-byte");
}

TEST_F(SafetensorsTest, ErrorHeaderLengthClaimsGigabytes) {
  std::string path = dir_.file("huge.safetensors");
  write_bytes(path, le_bytes<uint64_t>(5'000'000'000ull) + "{}");
  EXPECT_IO_ERROR(read_safetensors(path), path, "at most", "5000000000");
  write_bytes(path, le_bytes<uint64_t>(~0ull) + "{}");
  EXPECT_IO_ERROR(read_safetensors(path), path, "at most", "18446744073709551615");
}

TEST_F(SafetensorsTest, ErrorHeaderLongerThanFile) {
  std::string path = dir_.file("cut.safetensors");
  write_bytes(path, le_bytes<uint64_t>(1000) + "{\"w\":{");
  EXPECT_IO_ERROR(read_safetensors(path), path, "truncated", "1000");
}

TEST_F(SafetensorsTest, ErrorCorruptMagicNotASafetensorsFile) {
  // An npy file: its first 8 bytes read as a length of ~2^56.
  std::string path = dir_.file("really.npy");
  write_bytes(path, std::string("\x93NUMPY\x01\x00", 8) + std::string(120, ' '));
  EXPECT_IO_ERROR(read_safetensors(path), path, "not a safetensors file");
}

TEST_F(SafetensorsTest, ErrorGarbageJson) {
  std::string path = dir_.file("garbage.safetensors");
  for (const char* json : {"{\"w\":{\"dtype\":", "not json at all", "{\"a\":1}}", "\x01\x02"}) {
    write_bytes(path, st_bytes(json, ""));
    EXPECT_IO_ERROR(read_safetensors(path), path, "invalid JSON");
  }
  write_bytes(path, st_bytes("[1,2]", ""));
  EXPECT_IO_ERROR(read_safetensors(path), path, "object", "array");
}

// Two million nested arrays, alone and as a tensor's entry: refused in one line, and the
// parser (iterative) and the document's destruction never recurse that deep.
TEST_F(SafetensorsTest, ErrorDeeplyNestedJsonWithoutExhaustingTheStack) {
  std::string path = dir_.file("deep.safetensors");
  const std::string nested = std::string(2'000'000, '[') + std::string(2'000'000, ']');
  write_bytes(path, st_bytes(nested, ""));
  EXPECT_IO_ERROR(read_safetensors(path), path, "object", "array");
  write_bytes(path, st_bytes("{\"w\":" + nested + "}", ""));
  EXPECT_IO_ERROR(read_safetensors(path), path, "'w'");
}

TEST_F(SafetensorsTest, ErrorDuplicateNames) {
  std::string path = dir_.file("dup.safetensors");
  write_bytes(path,
              st_bytes(object({entry("w", "F32", "[1]", 0, 4), entry("w", "F32", "[1]", 4, 8)}),
                       le_bytes<float>({1, 2})));
  EXPECT_IO_ERROR(read_safetensors(path), path, "'w' twice");
}

TEST_F(SafetensorsTest, ErrorEntryNotAnObject) {
  std::string path = write_one("[1,2]", "");
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "object");
}

TEST_F(SafetensorsTest, ErrorUnknownDtype) {
  std::string path =
      write_one(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})", std::string(1, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "'F8_E4M3'", "BF16");
  path = write_one(R"({"shape":[1],"data_offsets":[0,4]})", std::string(4, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "'dtype'");
}

TEST_F(SafetensorsTest, ErrorOffsetsDisagreeWithDtypeAndShape) {
  std::string path =
      write_one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", std::string(20, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "spanning 24 bytes", "[0,20]");
  path = write_one(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", std::string(8, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "spanning 4 bytes");
  path = write_one(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", std::string(4, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "data_offsets");
  path = write_one(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", std::string(4, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "non-negative");
}

TEST_F(SafetensorsTest, ErrorOffsetsOutOfRange) {
  std::string path =
      write_one(R"({"dtype":"F32","shape":[2],"data_offsets":[1000,1008]})", std::string(8, '\0'));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "within the 8 bytes");
}

TEST_F(SafetensorsTest, ErrorTruncatedData) {
  std::string path = dir_.file("trunc.safetensors");
  write_safetensors(path, {{"a", Tensor({4})}, {"b", Tensor({2, 3})}});
  std::string bytes = read_bytes(path);
  write_bytes(path, bytes.substr(0, bytes.size() - 5));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'b'", "truncated");
}

TEST_F(SafetensorsTest, ErrorOverlappingOffsets) {
  std::string path = dir_.file("overlap.safetensors");
  write_bytes(path,
              st_bytes(object({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 4, 12)}),
                       std::string(12, '\0')));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'b'", "overlap", "tensor 'a'");
  // Two tensors on the same bytes.
  write_bytes(path,
              st_bytes(object({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 0, 8)}),
                       std::string(8, '\0')));
  EXPECT_IO_ERROR(read_safetensors(path), path, "overlap");
}

TEST_F(SafetensorsTest, ErrorGapAndTrailingBytes) {
  std::string path = dir_.file("gap.safetensors");
  write_bytes(path,
              st_bytes(object({entry("a", "F32", "[1]", 0, 4), entry("b", "F32", "[1]", 8, 12)}),
                       std::string(12, '\0')));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'b'", "gap");
  write_bytes(path, st_bytes(object({entry("a", "F32", "[1]", 0, 4)}), std::string(6, '\0')));
  EXPECT_IO_ERROR(read_safetensors(path), path, "trailing");
}

TEST_F(SafetensorsTest, ErrorBadShapeEntries) {
  struct Case {
    const char* shape;
    const char* needle;
  };
  for (Case c : {Case{"[-1,2]", "-1"}, Case{"[2.5]", "2.5"}, Case{"[\"3\"]", "string"},
                 Case{"[null]", "null"}, Case{"[18446744073709551615]", "18446744073709551615"}}) {
    std::string path =
        write_one(std::string(R"({"dtype":"F32","shape":)") + c.shape + R"(,"data_offsets":[0,4]})",
                  std::string(4, '\0'));
    EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "non-negative", c.needle);
  }
  std::string path = write_one(R"({"dtype":"F32","shape":3,"data_offsets":[0,4]})", "");
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "'shape' array");
}

TEST_F(SafetensorsTest, ErrorShapeProductOverflow) {
  std::string path =
      write_one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})", "");
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "64 bits");
  // Fits in int64 elements, but not in bytes.
  path = write_one(R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]})", "");
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "64 bits");
}

TEST_F(SafetensorsTest, ErrorBadMetadata) {
  std::string path = dir_.file("meta.safetensors");
  write_bytes(path, st_bytes(R"({"__metadata__":{"epochs":10}})", ""));
  EXPECT_IO_ERROR(read_safetensors(path), path, "__metadata__", "'epochs'", "string");
  write_bytes(path, st_bytes(R"({"__metadata__":"x"})", ""));
  EXPECT_IO_ERROR(read_safetensors(path), path, "__metadata__", "object");
}

TEST_F(SafetensorsTest, ErrorF64BeyondF32Range) {
  std::string path =
      write_one(R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})", le_bytes<double>(1e300));
  EXPECT_IO_ERROR(read_safetensors(path), path, "tensor 'w'", "f32 range");
}

TEST_F(SafetensorsTest, ErrorBadTensorsToWrite) {
  std::string path = dir_.file("out.safetensors");
  EXPECT_IO_ERROR(write_safetensors(path, {{"a", Tensor({1})}, {"a", Tensor({1})}}), path,
                  "'a' twice");
  EXPECT_IO_ERROR(write_safetensors(path, {{"__metadata__", Tensor({1})}}), path, "__metadata__");
  EXPECT_IO_ERROR(write_safetensors(path, {{"", Tensor({1})}}), path, "name");
  EXPECT_IO_ERROR(write_safetensors(path, {{"w", Tensor()}}), path, "tensor 'w'", "empty");
  EXPECT_IO_ERROR(write_safetensors(path, {{"bad\xff", Tensor({1})}}), path, "UTF-8");
  EXPECT_TRUE(dir_.entries().empty());
}

}  // namespace
}  // namespace resnet::io
