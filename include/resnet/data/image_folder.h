#pragma once
// Image folders, torchvision's ImageFolder layout with a train and a validation split:
//
//   DIR/train/CLASS/*.png|*.jpg|*.jpeg     (extensions in any case)
//   DIR/val/CLASS/...                      (or DIR/test/CLASS/... when there is no val)
//
// Classes are the sorted (byte order, as Python's sorted) subdirectory names of train; val
// must have exactly the same set. A class's images are listed as torchvision lists them,
// subdirectories included (folder_scan.h); hidden entries and files with other extensions
// are ignored. Every train class needs at least one image, and each split needs some.
//
// Opening reads every image's header (not its pixels; about 50 us of CPU time a file with a
// warm page cache, 0.16 s for 3000 files, so about a minute for a million): that decides whether
// the images share one size (a fixed-size dataset, floats through read_image(), exactly as before)
// or not (with `mixed_sizes`, a variable-size dataset whose 8-bit pixels a per-sample transform
// crops and resizes), gives image_size() without touching the file again, and refuses a file that
// is not an image before training starts. An unreadable header, or a size that differs from the
// first training image's when neither a resize nor mixed sizes are asked for, is refused with a
// message naming the file, the expected and the found size; with `skip_bad_images` an unreadable
// header drops the file instead (skipped_at_open() lists it). Pixels are decoded on demand (a file
// that turns out to be corrupt then throws, naming it). Colour: every image is converted to
// `channels` (default: 3 when any image of the folder has colour, else 1), as Pillow converts
// (image_codec.h).

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

struct FolderOptions {
  // 0: 3 when any image (train or val) has colour, else 1; else 1 (gray) or 3 (RGB).
  int64_t channels = 0;
  // 0 x 0: every image must have the first training image's size; else every image is
  // resized to height x width (bilinear, resize_bilinear in transforms.h).
  int64_t height = 0;
  int64_t width = 0;
  // Without a resize, images of different sizes make a variable-size dataset (C x 0 x 0)
  // instead of an error.
  bool mixed_sizes = false;
  // No val/ (or test/) directory is needed: the pair's test set is then null (the caller
  // holds out part of train instead).
  bool val_optional = false;
  // Files whose header cannot be read are left out (and listed) instead of refused.
  bool skip_bad_images = false;
};

class ImageFolderDataset : public Dataset {
 public:
  struct Entry {
    std::string path;
    int64_t label = 0;
    ImageSize size;  // from the header, read at open
  };

  // `entries` are the images with their labels. Images come out as `shape`: without
  // `resize` every file must have its height and width (or any, when shape is C x 0 x 0),
  // with `resize` each is resized to it.
  ImageFolderDataset(std::string name, std::vector<Entry> entries,
                     std::vector<std::string> class_names, ImageShape shape, bool resize,
                     std::vector<std::string> skipped = {});

  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  ImageShape image_shape() const override { return shape_; }
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  int64_t label(int64_t index) const override;
  void read_image(int64_t index, float* dst) const override;
  ImageSize image_size(int64_t index) const override;
  Pixels read_pixels(int64_t index, int64_t scale_denom = 1) const override;
  std::string example_name(int64_t index) const override { return entry(index).path; }
  std::string name() const override { return name_; }

  const Entry& entry(int64_t index) const;
  // Files left out at open because their header could not be read (skip_bad_images), each
  // "PATH: reason".
  const std::vector<std::string>& skipped_at_open() const { return skipped_; }

 private:
  std::string name_;
  std::vector<Entry> entries_;
  std::vector<std::string> class_names_;
  ImageShape shape_;
  bool resize_;
  std::vector<std::string> skipped_;
};

DatasetPair open_image_folder(const std::string& dir, const FolderOptions& options = {});

}  // namespace resnet::data
