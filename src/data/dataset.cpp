#include "resnet/data/dataset.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "resnet/core/error.h"

namespace resnet::data {

std::string ImageShape::str() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

Example Dataset::get(int64_t index) const {
  check_index(index);
  Example example;
  example.image = Tensor(image_shape().shape());
  read_image(index, example.image.f32());
  example.label = label(index);
  return example;
}

ImageSize Dataset::image_size(int64_t index) const {
  check_index(index);
  const ImageShape shape = image_shape();
  return {shape.height, shape.width};
}

Pixels Dataset::read_pixels(int64_t index, int64_t) const {
  check_index(index);
  RESNET_CHECK(!variable_size(), name() << ": expected read_pixels() of a dataset whose images "
                                           "differ in size to be its own, got none");
  Pixels p;
  p.shape = image_shape();
  std::vector<float> unit(static_cast<size_t>(p.shape.numel()));
  read_image(index, unit.data());
  p.bytes.resize(unit.size());
  for (size_t i = 0; i < unit.size(); ++i) {
    p.bytes[i] = static_cast<uint8_t>(std::lround(std::clamp(unit[i], 0.0f, 1.0f) * 255.0f));
  }
  return p;
}

std::string Dataset::example_name(int64_t index) const {
  return name() + " #" + std::to_string(index);
}

void Dataset::check_index(int64_t index) const {
  RESNET_CHECK(index >= 0 && index < size(),
               name() << ": expected an example index in [0, " << size() << "), got " << index);
}

std::vector<std::string> numbered_class_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

void check_labels(const std::vector<int64_t>& labels, int64_t num_classes,
                  const std::string& source) {
  for (size_t i = 0; i < labels.size(); ++i) {
    RESNET_CHECK(labels[i] >= 0 && labels[i] < num_classes,
                 source << ": expected labels in [0, " << num_classes << "), got " << labels[i]
                        << " at index " << i);
  }
}

InMemoryDataset::InMemoryDataset(std::string name, ImageShape shape, std::vector<uint8_t> pixels,
                                 std::vector<int64_t> labels, int64_t num_classes,
                                 std::vector<std::string> class_names)
    : name_(std::move(name)),
      shape_(shape),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      num_classes_(num_classes),
      class_names_(std::move(class_names)) {
  RESNET_CHECK(shape_.channels > 0 && shape_.height > 0 && shape_.width > 0,
               name_ << ": expected a positive image shape, got " << shape_.str());
  RESNET_CHECK(num_classes_ > 0, name_ << ": expected at least one class, got " << num_classes_);
  const uint64_t expected = labels_.size() * static_cast<uint64_t>(shape_.numel());
  RESNET_CHECK(pixels_.size() == expected, name_ << ": expected " << expected << " pixel bytes for "
                                                 << labels_.size() << " images of " << shape_.str()
                                                 << ", got " << pixels_.size());
  check_labels(labels_, num_classes_, name_);
  if (class_names_.empty()) class_names_ = numbered_class_names(num_classes_);
  RESNET_CHECK(
      static_cast<int64_t>(class_names_.size()) == num_classes_,
      name_ << ": expected " << num_classes_ << " class names, got " << class_names_.size());
}

int64_t InMemoryDataset::label(int64_t index) const {
  check_index(index);
  return labels_[static_cast<size_t>(index)];
}

const uint8_t* InMemoryDataset::pixels(int64_t index) const {
  check_index(index);
  return pixels_.data() + static_cast<size_t>(index) * static_cast<size_t>(shape_.numel());
}

Pixels InMemoryDataset::read_pixels(int64_t index, int64_t) const {
  const uint8_t* p = pixels(index);
  return {std::vector<uint8_t>(p, p + shape_.numel()), shape_};
}

void InMemoryDataset::read_image(int64_t index, float* dst) const {
  bytes_to_unit_floats(pixels(index), shape_.numel(), dst);
}

void bytes_to_unit_floats(const uint8_t* src, int64_t n, float* dst) {
  // A table of x / 255.0f: the same bits as torchvision's img.float().div(255), which a
  // multiplication by 1/255 would not give for every byte.
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<float>(i) / 255.0f;
    return t;
  }();
  for (int64_t i = 0; i < n; ++i) dst[i] = table[src[i]];
}

}  // namespace resnet::data
