#include "resnet/data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <iterator>

#include "resnet/core/error.h"
#include "resnet/data/folder_scan.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/transforms.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The entries of one split, in class order then file order.
std::vector<ImageFolderDataset::Entry> scan_split(const fs::path& split_dir,
                                                  const std::vector<std::string>& classes,
                                                  bool require_every_class) {
  std::vector<ImageFolderDataset::Entry> entries;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> files = list_images_under((split_dir / classes[c]).string());
    RESNET_CHECK(!require_every_class || !files.empty(),
                 (split_dir / classes[c]).string()
                     << ": expected at least one .png, .jpg or .jpeg image, got none");
    for (std::string& f : files) entries.push_back({std::move(f), static_cast<int64_t>(c), {}});
  }
  RESNET_CHECK(!entries.empty(), split_dir.string() << ": expected at least one image, got none");
  return entries;
}

void check_same_classes(const fs::path& train_dir, const fs::path& val_dir,
                        const std::vector<std::string>& train,
                        const std::vector<std::string>& val) {
  if (train == val) return;
  std::vector<std::string> missing, extra;
  std::set_difference(train.begin(), train.end(), val.begin(), val.end(),
                      std::back_inserter(missing));
  std::set_difference(val.begin(), val.end(), train.begin(), train.end(),
                      std::back_inserter(extra));
  RESNET_FAIL(val_dir.string() << ": expected the same classes as " << train_dir.string()
                               << ", got " << (missing.empty() ? "" : "missing: " + join(missing))
                               << (missing.empty() || extra.empty() ? "" : "; ")
                               << (extra.empty() ? "" : "extra: " + join(extra)));
}

// Reads every header into the entries; a file whose header cannot be read is refused or,
// with `skip`, dropped and recorded in `skipped`.
// Reads every entry's header and returns the most channels any has (1 or 3), 0 for none.
int64_t read_headers(std::vector<ImageFolderDataset::Entry>& entries, bool skip,
                     std::vector<std::string>& skipped) {
  int64_t channels = 0;
  std::vector<ImageFolderDataset::Entry> kept;
  kept.reserve(entries.size());
  for (auto& e : entries) {
    try {
      const ImageInfo info = read_image_info(e.path);
      e.size = {info.height, info.width};
      channels = std::max(channels, info.channels);
      kept.push_back(std::move(e));
    } catch (const Error& error) {
      if (!skip) throw;
      skipped.push_back(error.what());
    }
  }
  entries = std::move(kept);
  return channels;
}

// The first entry whose size differs from `expected`, or null.
const ImageFolderDataset::Entry* first_of_other_size(
    const std::vector<ImageFolderDataset::Entry>& entries, ImageSize expected) {
  for (const auto& e : entries) {
    if (!(e.size == expected)) return &e;
  }
  return nullptr;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(std::string name, std::vector<Entry> entries,
                                       std::vector<std::string> class_names, ImageShape shape,
                                       bool resize, std::vector<std::string> skipped)
    : name_(std::move(name)),
      entries_(std::move(entries)),
      class_names_(std::move(class_names)),
      shape_(shape),
      resize_(resize),
      skipped_(std::move(skipped)) {
  RESNET_CHECK(shape_.channels == 1 || shape_.channels == 3,
               name_ << ": expected 1 or 3 channels, got " << shape_.str());
  const bool variable = shape_.height == 0 && shape_.width == 0 && !resize_;
  RESNET_CHECK(variable || (shape_.height > 0 && shape_.width > 0),
               name_ << ": expected a positive image size, got " << shape_.str());
  for (const Entry& e : entries_) {
    RESNET_CHECK(e.label >= 0 && e.label < num_classes(),
                 e.path << ": expected a label in [0, " << num_classes() << "), got " << e.label);
  }
}

const ImageFolderDataset::Entry& ImageFolderDataset::entry(int64_t index) const {
  check_index(index);
  return entries_[static_cast<size_t>(index)];
}

int64_t ImageFolderDataset::label(int64_t index) const {
  return entry(index).label;
}

ImageSize ImageFolderDataset::image_size(int64_t index) const {
  const Entry& e = entry(index);
  return resize_ ? ImageSize{shape_.height, shape_.width} : e.size;
}

Pixels ImageFolderDataset::read_pixels(int64_t index, int64_t scale_denom) const {
  if (resize_) return Dataset::read_pixels(index, scale_denom);
  const Entry& e = entry(index);
  ImageInfo info;
  Pixels p;
  DecodeOptions options;
  options.scale_denom = scale_denom;
  p.bytes = decode_image(e.path, shape_.channels, &info, options);
  p.shape = {shape_.channels, info.height, info.width};
  RESNET_CHECK(!(scale_denom == 1 && !(ImageSize{info.height, info.width} == e.size)),
               e.path << ": expected a " << e.size.height << "x" << e.size.width
                      << " image (its size at open), got " << info.height << "x" << info.width);
  return p;
}

void ImageFolderDataset::read_image(int64_t index, float* dst) const {
  const Entry& e = entry(index);
  RESNET_CHECK(!variable_size(), e.path << ": expected a dataset of one image size to read "
                                           "floats from, got images of several sizes (use a "
                                           "per-sample transform)");
  ImageInfo info;
  std::vector<uint8_t> pixels = decode_image(e.path, shape_.channels, &info);
  if (!resize_) {
    // Checked at open too; the file may have been replaced since.
    RESNET_CHECK(info.height == shape_.height && info.width == shape_.width,
                 e.path << ": expected a " << shape_.height << "x" << shape_.width << " image, got "
                        << info.height << "x" << info.width);
    bytes_to_unit_floats(pixels.data(), shape_.numel(), dst);
    return;
  }
  const ImageShape from{shape_.channels, info.height, info.width};
  std::vector<float> unit(static_cast<size_t>(from.numel()));
  bytes_to_unit_floats(pixels.data(), from.numel(), unit.data());
  resize_bilinear(unit.data(), from, dst, shape_.height, shape_.width);
}

DatasetPair open_image_folder(const std::string& dir, const FolderOptions& options) {
  RESNET_CHECK(options.channels == 0 || options.channels == 1 || options.channels == 3,
               dir << ": expected 0 (as the images), 1 or 3 channels, got " << options.channels);
  const bool resize = options.height > 0 || options.width > 0;
  RESNET_CHECK(!resize || (options.height > 0 && options.width > 0),
               dir << ": expected a positive resize height and width, got " << options.height << "x"
                   << options.width);
  std::error_code ec;
  RESNET_CHECK(fs::is_directory(dir, ec),
               dir << ": expected an image folder (DIR/train/CLASS/*.png), got "
                   << (fs::exists(dir, ec) ? "a file" : "no such directory"));
  const fs::path train_dir = fs::path(dir) / "train";
  fs::path val_dir = fs::path(dir) / "val";
  RESNET_CHECK(fs::is_directory(train_dir, ec), dir << ": expected a subdirectory train, got none");
  if (!fs::is_directory(val_dir, ec) && fs::is_directory(fs::path(dir) / "test", ec)) {
    val_dir = fs::path(dir) / "test";
  }
  const bool has_val = fs::is_directory(val_dir, ec);
  RESNET_CHECK(has_val || options.val_optional,
               dir << ": expected a subdirectory val (or test), got none (or hold out part of "
                      "train with --val-split)");

  std::vector<std::string> classes = list_class_directories(train_dir.string());
  RESNET_CHECK(!classes.empty(), train_dir.string()
                                     << ": expected one subdirectory per class, got none");
  if (has_val)
    check_same_classes(train_dir, val_dir, classes, list_class_directories(val_dir.string()));

  std::vector<ImageFolderDataset::Entry> train = scan_split(train_dir, classes, true);
  std::vector<ImageFolderDataset::Entry> val;
  if (has_val) val = scan_split(val_dir, classes, false);
  std::vector<std::string> skipped_train, skipped_val;
  // One colour image makes the folder RGB (grey ones are repeated into three channels, as
  // torchvision's loader converts every image to RGB); an all-grey folder stays grey.
  const int64_t channels = std::max(read_headers(train, options.skip_bad_images, skipped_train),
                                    read_headers(val, options.skip_bad_images, skipped_val));
  RESNET_CHECK(!train.empty(), train_dir.string() << ": expected at least one readable image, got "
                                                  << skipped_train.size() << " unreadable ones");
  RESNET_CHECK(!has_val || !val.empty(), val_dir.string()
                                             << ": expected at least one readable image, got "
                                             << skipped_val.size() << " unreadable ones");
  const ImageInfo first = read_image_info(train.front().path);
  ImageShape shape{options.channels ? options.channels : channels, first.height, first.width};
  if (resize) {
    shape.height = options.height;
    shape.width = options.width;
  } else {
    const ImageSize expected{first.height, first.width};
    const ImageFolderDataset::Entry* odd = first_of_other_size(train, expected);
    if (!odd) odd = first_of_other_size(val, expected);
    if (odd && options.mixed_sizes) {
      shape.height = shape.width = 0;  // variable size
    } else {
      RESNET_CHECK(!odd, odd->path << ": expected a " << expected.height << "x" << expected.width
                                   << " image (the size of " << train.front().path << "), got "
                                   << odd->size.height << "x" << odd->size.width);
    }
  }
  DatasetPair pair;
  pair.train =
      std::make_shared<ImageFolderDataset>("folder train (" + dir + ")", std::move(train), classes,
                                           shape, resize, std::move(skipped_train));
  if (has_val) {
    pair.test = std::make_shared<ImageFolderDataset>(
        "folder " + val_dir.filename().string() + " (" + dir + ")", std::move(val), classes, shape,
        resize, std::move(skipped_val));
  }
  return pair;
}

}  // namespace resnet::data
