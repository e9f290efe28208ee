#include "resnet/io/npy.h"

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

// A .npy file built by hand: magic, version, header length, the header dict padded with
// spaces to a 64-byte boundary and ended by '\n', then `data`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append(64 - (preamble + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  out += major == 1 ? le_bytes(static_cast<uint16_t>(header.size()))
                    : le_bytes(static_cast<uint32_t>(header.size()));
  return out + header + data;
}

std::string dict(const std::string& descr, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
}

Tensor iota_f32(Shape shape) {
  Tensor t(std::move(shape));
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.25f * static_cast<float>(i) - 7.5f;
  return t;
}

void expect_same_f32(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), DType::f32);
  ASSERT_EQ(b.dtype(), DType::f32);
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
}

class NpyTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// --- round trips ---

TEST_F(NpyTest, RoundTripF32OddShape_3x5x7x9) {
  Tensor t = iota_f32({3, 5, 7, 9});
  t.f32()[17] = std::numeric_limits<float>::quiet_NaN();
  t.f32()[18] = -std::numeric_limits<float>::infinity();
  t.f32()[19] = std::numeric_limits<float>::denorm_min();
  std::string path = dir_.file("odd.npy");
  write_npy(path, t);
  expect_same_f32(read_npy(path), t);
}

TEST_F(NpyTest, RoundTripScalar) {
  Tensor t = Tensor::full({}, 3.5f);
  std::string path = dir_.file("scalar.npy");
  write_npy(path, t);
  Tensor back = read_npy(path);
  EXPECT_EQ(back.shape(), Shape{});
  EXPECT_EQ(back.f32()[0], 3.5f);
}

TEST_F(NpyTest, RoundTripEmptyDims) {
  for (const Shape& shape : {Shape{0}, Shape{3, 0, 2}, Shape{0, 0}}) {
    std::string path = dir_.file("empty.npy");
    write_npy(path, Tensor(shape));
    Tensor back = read_npy(path);
    EXPECT_EQ(back.shape(), shape) << shape_str(shape);
    EXPECT_EQ(back.numel(), 0);
  }
}

TEST_F(NpyTest, RoundTripI64KeepsI64OrConvertsToF32) {
  Tensor t({2, 3}, DType::i64);
  int64_t values[] = {0, -1, 7, 1 << 24, -(1 << 24), 123456};
  std::memcpy(t.raw(), values, sizeof(values));
  std::string path = dir_.file("labels.npy");
  write_npy(path, t);
  EXPECT_NE(read_bytes(path).find("'descr': '<i8'"), std::string::npos);

  Tensor as_i64 = read_npy(path, NpyIntegers::to_i64);
  ASSERT_EQ(as_i64.dtype(), DType::i64);
  EXPECT_EQ(as_i64.shape(), (Shape{2, 3}));
  EXPECT_EQ(std::memcmp(as_i64.raw(), values, sizeof(values)), 0);

  Tensor as_f32 = read_npy(path);
  ASSERT_EQ(as_f32.dtype(), DType::f32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(as_f32.f32()[i], static_cast<float>(values[i]));
}

TEST_F(NpyTest, U8WrittenAsBool) {
  Tensor mask({2, 3}, DType::u8);
  const uint8_t values[] = {1, 0, 1, 1, 0, 1};
  std::memcpy(mask.raw(), values, 6);
  const std::string path = dir_.file("mask.npy");
  write_npy(path, mask, NpyBytes::as_bool);
  EXPECT_NE(testing::read_bytes(path).find("'descr': '|b1'"), std::string::npos);
  const Tensor back = read_npy(path, NpyIntegers::to_i64);
  ASSERT_EQ(back.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back.i64()[i], values[i]);
  // Anything but 0 and 1 is no bool; an f32 tensor is not one either.
  static_cast<uint8_t*>(mask.raw())[4] = 2;
  EXPECT_IO_ERROR(write_npy(path, mask, NpyBytes::as_bool), path, "expected 0 or 1",
                  "found 2 at element 4");
  EXPECT_IO_ERROR(write_npy(path, Tensor({2}), NpyBytes::as_bool), path, "expected a u8 tensor",
                  "got f32");
}

TEST_F(NpyTest, RoundTripU8AndI8) {
  Tensor u({4}, DType::u8);
  uint8_t uv[] = {0, 1, 200, 255};
  std::memcpy(u.raw(), uv, 4);
  write_npy(dir_.file("u.npy"), u);
  Tensor back = read_npy(dir_.file("u.npy"));
  EXPECT_EQ(std::vector<float>(back.values().begin(), back.values().end()),
            (std::vector<float>{0, 1, 200, 255}));

  Tensor s({3}, DType::i8);
  int8_t sv[] = {-128, 0, 127};
  std::memcpy(s.raw(), sv, 3);
  write_npy(dir_.file("s.npy"), s);
  Tensor back_s = read_npy(dir_.file("s.npy"), NpyIntegers::to_i64);
  EXPECT_EQ(back_s.i64()[0], -128);
  EXPECT_EQ(back_s.i64()[2], 127);
}

// --- byte-level cross-checks ---

// np.save(np.arange(6, dtype='<f4').reshape(2, 3)) byte for byte: the 59-character dict,
// 20 spaces of room for the first dimension to grow to 21 digits, then 37 spaces and '\n'
// up to byte 128, so the header length field says 118.
TEST_F(NpyTest, WriteMatchesNumpyBytes) {
  std::string dict_text = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(dict_text.size(), 59u);
  std::string expected = std::string("\x93NUMPY\x01\x00", 8) + le_bytes<uint16_t>(118) + dict_text +
                         std::string(118 - 59 - 1, ' ') + "\n" +
                         le_bytes<float>({0.f, 1.f, 2.f, 3.f, 4.f, 5.f});
  ASSERT_EQ(expected.size(), 128u + 24u);
  std::string path = dir_.file("a.npy");
  write_npy(path, Tensor::from_vector({2, 3}, {0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(read_bytes(path), expected);
}

TEST_F(NpyTest, ReadsHandBuiltV1) {
  std::string path = dir_.file("v1.npy");
  write_bytes(path, npy_bytes(dict("<f4", "(2, 3)"), le_bytes<float>({1, 2, 3, 4, 5, -6.5f})));
  Tensor t = read_npy(path);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.f32()[5], -6.5f);
}

TEST_F(NpyTest, ReadsV2AndV3Headers) {
  for (int major : {2, 3}) {
    std::string path = dir_.file(std::string("v") + std::to_string(major) + ".npy");
    write_bytes(path, npy_bytes(dict("<f4", "(3,)"), le_bytes<float>({1, 2, 3}), major));
    Tensor t = read_npy(path);
    EXPECT_EQ(t.shape(), Shape{3}) << "version " << major;
    EXPECT_EQ(t.f32()[2], 3.f);
  }
}

TEST_F(NpyTest, ReadsHeaderVariants) {
  // Keys in another order, double quotes, no trailing comma, Python 2 "L" suffixes, and a
  // header not padded to 64 bytes (old NumPy aligned to 16).
  std::string path = dir_.file("variants.npy");
  std::string header = "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}\n";
  write_bytes(path, std::string("\x93NUMPY\x01\x00", 8) +
                        le_bytes(static_cast<uint16_t>(header.size())) + header +
                        le_bytes<float>({9, 8}));
  Tensor t = read_npy(path);
  EXPECT_EQ(t.shape(), (Shape{1, 2}));
  EXPECT_EQ(t.f32()[1], 8.f);
}

TEST_F(NpyTest, ConvertsOtherDtypesToF32) {
  struct Case {
    const char* descr;
    std::string data;
    std::vector<float> expected;
  };
  const float inf = std::numeric_limits<float>::infinity();
  Case cases[] = {
      {"<f8", le_bytes<double>({0.5, -1e30, 1e-50}), {0.5f, -1e30f, 0.f}},
      // 1, -2, 65504 (largest f16), 2^-24 (smallest subnormal), -inf.
      {"<f2",
       le_bytes<uint16_t>({0x3c00, 0xc000, 0x7bff, 0x0001, 0xfc00}),
       {1.f, -2.f, 65504.f, std::ldexp(1.f, -24), -inf}},
      {"<i4", le_bytes<int32_t>({-5, 16777216}), {-5.f, 16777216.f}},
      {"<i2", le_bytes<int16_t>({-32768, 3}), {-32768.f, 3.f}},
      {"|i1", le_bytes<int8_t>({-1, 2}), {-1.f, 2.f}},
      {"|u1", le_bytes<uint8_t>({255, 0}), {255.f, 0.f}},
      {"<u2", le_bytes<uint16_t>({65535}), {65535.f}},
      {"<u4", le_bytes<uint32_t>({4294967295u - 255u}), {4294967040.f}},
      {"<u8", le_bytes<uint64_t>({1ull << 40}), {1099511627776.f}},
      {"<i8", le_bytes<int64_t>({-(1ll << 62)}), {-4611686018427387904.f}},
      {"|b1", std::string("\x01\x00", 2), {1.f, 0.f}},
      {"=f4", le_bytes<float>({2.5f}), {2.5f}},
  };
  for (const Case& c : cases) {
    std::string path = dir_.file("conv.npy");
    std::string shape = std::string("(") + std::to_string(c.expected.size()) + ",)";
    write_bytes(path, npy_bytes(dict(c.descr, shape), c.data));
    Tensor t = read_npy(path);
    ASSERT_EQ(t.dtype(), DType::f32) << c.descr;
    EXPECT_EQ(std::vector<float>(t.values().begin(), t.values().end()), c.expected) << c.descr;
  }
}

TEST_F(NpyTest, ReadsIntegersAsI64WhenAsked) {
  std::string path = dir_.file("i4.npy");
  write_bytes(path, npy_bytes(dict("<i4", "(2,)"), le_bytes<int32_t>({-7, 16777217})));
  Tensor t = read_npy(path, NpyIntegers::to_i64);
  ASSERT_EQ(t.dtype(), DType::i64);
  EXPECT_EQ(t.i64()[0], -7);
  EXPECT_EQ(t.i64()[1], 16777217);
  // Floats stay f32 either way.
  write_bytes(path, npy_bytes(dict("<f8", "(1,)"), le_bytes<double>({0.5})));
  EXPECT_EQ(read_npy(path, NpyIntegers::to_i64).dtype(), DType::f32);
}

// The input of a generated fixture was written by NumPy's own np.save: we read it, and
// writing it again reproduces NumPy's bytes exactly.
TEST_F(NpyTest, ReadsAndRewritesNumpyFixture) {
  std::string fixture = std::string(RESNET_FIXTURE_DIR) + "/block_3_3_2/input.npy";
  if (!std::filesystem::exists(fixture)) GTEST_SKIP() << "no fixture " << fixture;
  Tensor t = read_npy(fixture);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 8, 7}));
  std::string path = dir_.file("input.npy");
  write_npy(path, t);
  EXPECT_EQ(read_bytes(path), read_bytes(fixture));
}

// --- bad input: each names the file and says what was wrong ---

TEST_F(NpyTest, ErrorMissingFile) {
  std::string path = dir_.file("nope.npy");
  EXPECT_IO_ERROR(read_npy(path), path, "existing file", "No such file");
}

TEST_F(NpyTest, ErrorDirectory) {
  EXPECT_IO_ERROR(read_npy(dir_.path().string()), dir_.path().string(), "directory");
}

TEST_F(NpyTest, ErrorEmptyAndShortFiles) {
  std::string path = dir_.file("short.npy");
  write_bytes(path, "");
  EXPECT_IO_ERROR(read_npy(path), path, "magic", "empty file");
  write_bytes(path, std::string("\x93NUMPY\x01", 7));
  EXPECT_IO_ERROR(read_npy(path), path, "truncated");
  write_bytes(path, std::string("\x93NUMPY\x01\x00\x10", 9));
  EXPECT_IO_ERROR(read_npy(path), path, "truncated");
}

TEST_F(NpyTest, ErrorCorruptMagic) {
  std::string path = dir_.file("magic.npy");
  std::string bytes = npy_bytes(dict("<f4", "(1,)"), le_bytes<float>({1}));
  bytes[1] = 'X';
  write_bytes(path, bytes);
  EXPECT_IO_ERROR(read_npy(path), path, "magic", "\\x93XUMPY");
}

TEST_F(NpyTest, ErrorUnknownVersion) {
  std::string path = dir_.file("v4.npy");
  std::string bytes = npy_bytes(dict("<f4", "(1,)"), le_bytes<float>({1}), 3);
  bytes[6] = 4;
  write_bytes(path, bytes);
  EXPECT_IO_ERROR(read_npy(path), path, "version", "4.0");
}

TEST_F(NpyTest, ErrorHeaderLongerThanFile) {
  std::string path = dir_.file("hdr.npy");
  std::string bytes = npy_bytes(dict("<f4", "(1,)"), "");
  write_bytes(path, bytes.substr(0, 40));
  EXPECT_IO_ERROR(read_npy(path), path, "truncated", "header");
}

TEST_F(NpyTest, ErrorHeaderLengthClaimsGigabytes) {
  std::string path = dir_.file("huge.npy");
  write_bytes(path, std::string("\x93NUMPY\x02\x00", 8) + le_bytes<uint32_t>(0xfffffff0u) +
                        dict("<f4", "(1,)"));
  EXPECT_IO_ERROR(read_npy(path), path, "at most", "4294967280");
}

TEST_F(NpyTest, ErrorBadHeaderDict) {
  const char* bad[] = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ",  // no closing brace
      "hello",
      "{'descr': '<f4' 'fortran_order': False}",                      // missing comma
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }",  // non-integer dim
      "{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }",     // broken quote
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x",  // trailing garbage
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
      "{'shape': ((((((((((((2,),),),),),),),),),),),)}",
  };
  for (const char* text : bad) {
    std::string path = dir_.file("dict.npy");
    write_bytes(path, npy_bytes(text, le_bytes<float>({1, 2})));
    EXPECT_IO_ERROR(read_npy(path), path, "header dict");
  }
}

TEST_F(NpyTest, ErrorMissingOrExtraKeys) {
  std::string path = dir_.file("keys.npy");
  write_bytes(path, npy_bytes("{'descr': '<f4', 'fortran_order': False}", le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "'shape'");
  write_bytes(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                              le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "keys", "'x'");
  write_bytes(path, npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                              "'shape': (1,)}",
                              le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "once");
}

TEST_F(NpyTest, ErrorFortranOrder) {
  std::string path = dir_.file("fortran.npy");
  write_bytes(path, npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                              le_bytes<float>({1, 2, 3, 4})));
  EXPECT_IO_ERROR(read_npy(path), path, "fortran_order");
}

TEST_F(NpyTest, ErrorRefusedDtypesNameTheDtype) {
  std::string path = dir_.file("dtype.npy");
  write_bytes(path, npy_bytes(dict(">f4", "(1,)"), le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "big-endian", ">f4");
  for (const char* descr : {"<c8", "|O", "<U3", "|S4", "<M8[ns]", "<f16", "<x4", "f4"}) {
    write_bytes(path, npy_bytes(dict(descr, "(1,)"), std::string(8, '\0')));
    EXPECT_IO_ERROR(read_npy(path), path, "dtype", std::string("'") + descr + "'");
  }
  write_bytes(path, npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                              le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "structured");
}

TEST_F(NpyTest, ErrorNegativeDimension) {
  std::string path = dir_.file("neg.npy");
  write_bytes(path, npy_bytes(dict("<f4", "(-1, 3)"), le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "non-negative", "-1");
  write_bytes(path, npy_bytes(dict("<f4", "('3',)"), le_bytes<float>({1})));
  EXPECT_IO_ERROR(read_npy(path), path, "non-negative", "a string");
}

TEST_F(NpyTest, ErrorShapeOverflow) {
  std::string path = dir_.file("overflow.npy");
  write_bytes(path, npy_bytes(dict("<f4", "(4294967296, 4294967296)"), ""));
  EXPECT_IO_ERROR(read_npy(path), path, "64 bits");
  write_bytes(path, npy_bytes(dict("<f4", "(99999999999999999999,)"), ""));
  EXPECT_IO_ERROR(read_npy(path), path, "64 bits");
}

TEST_F(NpyTest, ErrorDataShorterThanShape) {
  std::string path = dir_.file("short_data.npy");
  write_bytes(path, npy_bytes(dict("<f4", "(1000000000, 1000)"), le_bytes<float>({1, 2})));
  EXPECT_IO_ERROR(read_npy(path), path, "truncated", "4000000000000 bytes", "got 8");
}

TEST_F(NpyTest, ErrorTrailingData) {
  std::string path = dir_.file("long_data.npy");
  write_bytes(path, npy_bytes(dict("<f4", "(1,)"), le_bytes<float>({1, 2})));
  EXPECT_IO_ERROR(read_npy(path), path, "trailing");
}

TEST_F(NpyTest, ErrorValuesF32CannotHold) {
  std::string path = dir_.file("values.npy");
  write_bytes(path, npy_bytes(dict("<i4", "(2,)"), le_bytes<int32_t>({1, 16777217})));
  EXPECT_IO_ERROR(read_npy(path), path, "exactly representable", "16777217", "index 1");
  write_bytes(path, npy_bytes(dict("<u8", "(1,)"), le_bytes<uint64_t>({~0ull})));
  EXPECT_IO_ERROR(read_npy(path), path, "18446744073709551615");
  EXPECT_IO_ERROR(read_npy(path, NpyIntegers::to_i64), path, "int64");
  write_bytes(path, npy_bytes(dict("<f8", "(1,)"), le_bytes<double>({1e300})));
  EXPECT_IO_ERROR(read_npy(path), path, "f32 range");
}

TEST_F(NpyTest, ErrorWriteUnsupportedTensor) {
  std::string path = dir_.file("out.npy");
  EXPECT_IO_ERROR(write_npy(path, Tensor({2}, DType::bf16)), path, "bf16");
  EXPECT_IO_ERROR(write_npy(path, Tensor()), path, "empty");
  std::string missing = dir_.file("no_such_dir/out.npy");
  EXPECT_IO_ERROR(write_npy(missing, Tensor({2})), missing, "No such file");
  EXPECT_TRUE(dir_.entries().empty());
}

}  // namespace
}  // namespace resnet::io
