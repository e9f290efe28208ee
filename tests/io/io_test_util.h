#pragma once
// Helpers for the io tests: a scratch directory removed at the end of each test, whole-file
// byte access, and a check that a statement throws resnet::Error with a telling message.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "resnet/core/error.h"

namespace resnet::testing {

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "resnet_io_" + std::to_string(::getpid()) + "_" +
                       std::to_string(counter.fetch_add(1)) + "_" +
                       (info ? std::string(info->name()) : std::string("test"));
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Little-endian bytes of a value, for building files by hand.
template <typename T>
std::string le_bytes(T value) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &value, sizeof(T));
  return s;
}

template <typename T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s += le_bytes(v);
  return s;
}

}  // namespace resnet::testing

// Expects `statement` to throw resnet::Error whose one-line message contains each of the
// given strings (the file name and a word that says what went wrong).
#define EXPECT_IO_ERROR(statement, ...)                                               \
  do {                                                                                \
    try {                                                                             \
      statement;                                                                      \
      ADD_FAILURE() << "expected resnet::Error from " #statement;                     \
    } catch (const ::resnet::Error& resnet_io_error_) {                               \
      std::string resnet_io_message_ = resnet_io_error_.what();                       \
      EXPECT_EQ(resnet_io_message_.find('\n'), std::string::npos)                     \
          << "message spans lines: " << resnet_io_message_;                           \
      for (const std::string& resnet_io_needle_ :                                     \
           std::initializer_list<std::string>{__VA_ARGS__}) {                         \
        EXPECT_NE(resnet_io_message_.find(resnet_io_needle_), std::string::npos)      \
            << "message: " << resnet_io_message_ << "\nlacks: " << resnet_io_needle_; \
      }                                                                               \
    }                                                                                 \
  } while (0)
