#pragma once
// Helpers for the data tests: IDX and CIFAR files built byte by byte, and small synthetic
// datasets. The scratch directory and the error-message check come from the io tests.

#include <cstdint>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "resnet/data/dataset.h"

namespace resnet::testing {

inline std::string be_u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// An idx3-ubyte file: magic 00 00 08 03, count, rows, cols (big-endian), pixels.
inline std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols,
                              const std::vector<uint8_t>& pixels) {
  std::string s = std::string("\0\0\x08\x03", 4) + be_u32(count) + be_u32(rows) + be_u32(cols);
  return s + std::string(pixels.begin(), pixels.end());
}

// An idx1-ubyte file: magic 00 00 08 01, count, labels.
inline std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string s = std::string("\0\0\x08\x01", 4) + be_u32(static_cast<uint32_t>(labels.size()));
  return s + std::string(labels.begin(), labels.end());
}

// Pixel p of image i: a value that differs across images, rows and columns.
inline uint8_t test_pixel(int64_t image, int64_t p) {
  return static_cast<uint8_t>((image * 37 + p * 11 + 3) % 256);
}

inline std::vector<uint8_t> test_pixels(int64_t count, int64_t per_image) {
  std::vector<uint8_t> pixels;
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < per_image; ++p) pixels.push_back(test_pixel(i, p));
  }
  return pixels;
}

// CIFAR records: label byte(s) then 3072 pixel bytes each; `first` numbers the images.
inline std::string cifar_records(const std::vector<std::vector<uint8_t>>& labels,
                                 int64_t first = 0) {
  std::string s;
  for (size_t r = 0; r < labels.size(); ++r) {
    for (uint8_t l : labels[r]) s += static_cast<char>(l);
    for (int64_t p = 0; p < 3072; ++p) {
      s += static_cast<char>(test_pixel(first + static_cast<int64_t>(r), p));
    }
  }
  return s;
}

// `n` images of `shape` whose pixels are test_pixel(i, p), labels i % classes.
inline std::shared_ptr<data::InMemoryDataset> synthetic_dataset(int64_t n, data::ImageShape shape,
                                                                int64_t classes = 10) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i % classes);
  return std::make_shared<data::InMemoryDataset>("synthetic", shape, test_pixels(n, shape.numel()),
                                                 labels, classes);
}

}  // namespace resnet::testing
