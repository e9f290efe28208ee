#pragma once
// Dataset: a fixed, indexable set of labelled images.
//
// Every dataset yields an int64 label in [0, num_classes()) per example and its image in one
// of two ways:
//   - fixed-size datasets (all images of one shape, image_shape() positive) give float32
//     [C, H, W] images with values in [0, 1] (pixel / 255, as torchvision's ToTensor) through
//     read_image();
//   - every dataset gives its 8-bit [C, H, W] pixels through read_pixels(), which is the only
//     way for variable-size datasets (image_shape() is C x 0 x 0): a per-sample transform
//     (sample_transform.h) turns them into the fixed shape a batch needs, on 8-bit pixels as
//     torchvision's transforms work on PIL images.
// read_image(), read_pixels(), image_size() and label() are const and safe to call from
// several threads at once (the loader calls them from its worker threads).
//
// InMemoryDataset holds 8-bit pixels in memory (IDX and CIFAR are read into one); image
// folders decode on demand (image_folder.h). open_dataset() (open_dataset.h) turns a spec
// string into a train/test pair.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::data {

struct ImageShape {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;

  int64_t numel() const { return channels * height * width; }
  Shape shape() const { return {channels, height, width}; }  // [C, H, W]
  std::string str() const;                                   // "3x32x32"
  bool operator==(const ImageShape&) const = default;
};

struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
  bool operator==(const ImageSize&) const = default;
};

// Decoded 8-bit pixels, [C, H, W] row-major.
struct Pixels {
  std::vector<uint8_t> bytes;
  ImageShape shape;
};

struct Example {
  Tensor image;  // [C, H, W] f32 in [0, 1]
  int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Number of examples.
  virtual int64_t size() const = 0;
  // The shape of every image; C x 0 x 0 when the images differ in size.
  virtual ImageShape image_shape() const = 0;
  bool variable_size() const { return image_shape().height == 0; }
  virtual int64_t num_classes() const = 0;
  // One name per class when the format has them (else "0", "1", ...); size num_classes().
  virtual const std::vector<std::string>& class_names() const = 0;
  // Label of example `index` (0 <= index < size(), checked).
  virtual int64_t label(int64_t index) const = 0;
  // Writes example `index` as image_shape().numel() floats, [C, H, W], into `dst`.
  // Throws resnet::Error naming the file if an image cannot be decoded, and for a
  // variable-size dataset.
  virtual void read_image(int64_t index, float* dst) const = 0;
  // The height and width of image `index` as read_pixels(index, 1) would give them, without
  // decoding it (a file's header at most). Default: image_shape()'s.
  virtual ImageSize image_size(int64_t index) const;
  // Image `index` as 8-bit pixels with image_shape().channels channels. `scale_denom` (1, 2,
  // 4 or 8) allows a decoder to shrink the image by about that factor while decoding (JPEG's
  // scaled IDCT); the result's shape says what was done (a dataset may ignore it). Default:
  // read_image()'s floats times 255, rounded (exact for the 8-bit datasets here).
  virtual Pixels read_pixels(int64_t index, int64_t scale_denom = 1) const;
  // What example `index` is, for messages and lists: its file path, or "NAME #INDEX".
  virtual std::string example_name(int64_t index) const;
  // What this is, for messages: "fashion-mnist train (/usr/share/datasets/fashion-mnist)".
  virtual std::string name() const = 0;

  // Example `index` as a fresh tensor.
  Example get(int64_t index) const;

 protected:
  // Throws "NAME: expected an example index in [0, size), got INDEX".
  void check_index(int64_t index) const;
};

struct DatasetPair {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
};

// Class names "0" .. "n-1".
std::vector<std::string> numbered_class_names(int64_t n);

// Images of 8-bit pixels held in memory, [N, C, H, W] row-major, and their labels.
class InMemoryDataset : public Dataset {
 public:
  // `pixels` holds size * shape.numel() bytes; `labels` one label per image, each in
  // [0, num_classes); `class_names` is empty (numbered names are made) or has num_classes
  // entries. Everything is checked; `name` prefixes the messages.
  InMemoryDataset(std::string name, ImageShape shape, std::vector<uint8_t> pixels,
                  std::vector<int64_t> labels, int64_t num_classes,
                  std::vector<std::string> class_names = {});

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  ImageShape image_shape() const override { return shape_; }
  int64_t num_classes() const override { return num_classes_; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  int64_t label(int64_t index) const override;
  void read_image(int64_t index, float* dst) const override;
  Pixels read_pixels(int64_t index, int64_t scale_denom = 1) const override;
  std::string name() const override { return name_; }

  // The raw bytes of image `index`, shape().numel() of them.
  const uint8_t* pixels(int64_t index) const;

 private:
  std::string name_;
  ImageShape shape_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int64_t num_classes_;
  std::vector<std::string> class_names_;
};

// dst[i] = src[i] / 255.0f for n bytes (bit-identical to torchvision's ToTensor).
void bytes_to_unit_floats(const uint8_t* src, int64_t n, float* dst);

// Checks that every label lies in [0, num_classes); the message names `source` (a file),
// the first bad label and its index.
void check_labels(const std::vector<int64_t>& labels, int64_t num_classes,
                  const std::string& source);

}  // namespace resnet::data
