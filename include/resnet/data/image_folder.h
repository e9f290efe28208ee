#pragma once
// Image folders, torchvision's ImageFolder layout with a train and a validation split:
//
//   DIR/train/CLASS/*.png|*.jpg|*.jpeg     (extensions in any case)
//   DIR/val/CLASS/...                      (or DIR/test/CLASS/... when there is no val)
//
// Classes are the sorted (byte order, as Python's sorted) subdirectory names of train; val
// must have exactly the same set. Files are taken in sorted order within a class; hidden
// entries and files with other extensions are ignored. Every train class needs at least
// one image, and each split needs some.
//
// Opening reads every image's header (not its pixels): an unreadable header, or a size that
// differs from the first training image's when no resize is asked for, is refused with a
// message naming the file, the expected and the found size. Pixels are decoded on demand by
// read_image() (a file that turns out to be corrupt then throws, naming it). Colour: every
// image is converted to `channels` (default: the first training image's, 1 or 3), as Pillow
// converts (image_codec.h).

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

struct FolderOptions {
  // 0: the first training image's channel count; else 1 (gray) or 3 (RGB).
  int64_t channels = 0;
  // 0 x 0: every image must have the first training image's size; else every image is
  // resized to height x width (bilinear, resize_bilinear in transforms.h).
  int64_t height = 0;
  int64_t width = 0;
};

class ImageFolderDataset : public Dataset {
 public:
  struct Entry {
    std::string path;
    int64_t label = 0;
  };

  // `entries` are the images with their labels. Images come out as `shape`: without
  // `resize` every file must have its height and width, with `resize` each is resized to it.
  ImageFolderDataset(std::string name, std::vector<Entry> entries,
                     std::vector<std::string> class_names, ImageShape shape, bool resize);

  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  ImageShape image_shape() const override { return shape_; }
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  int64_t label(int64_t index) const override;
  void read_image(int64_t index, float* dst) const override;
  std::string name() const override { return name_; }

  const Entry& entry(int64_t index) const;

 private:
  std::string name_;
  std::vector<Entry> entries_;
  std::vector<std::string> class_names_;
  ImageShape shape_;
  bool resize_;
};

DatasetPair open_image_folder(const std::string& dir, const FolderOptions& options = {});

}  // namespace resnet::data
