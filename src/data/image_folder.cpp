#include "resnet/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iterator>

#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/transforms.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<std::string> sorted_subdirectories(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!hidden(it->path()) && it->is_directory(ec))
      names.push_back(it->path().filename().string());
  }
  RESNET_CHECK(!ec, dir.string() << ": expected a readable directory, got " << ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> sorted_images(const fs::path& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (!hidden(p) && is_image_name(p) && it->is_regular_file(ec)) paths.push_back(p.string());
  }
  RESNET_CHECK(!ec, dir.string() << ": expected a readable directory, got " << ec.message());
  std::sort(paths.begin(), paths.end());
  return paths;
}

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
    std::vector<std::string> files = sorted_images(split_dir / classes[c]);
    RESNET_CHECK(!require_every_class || !files.empty(),
                 (split_dir / classes[c]).string()
                     << ": expected at least one .png, .jpg or .jpeg image, got none");
    for (std::string& f : files) entries.push_back({std::move(f), static_cast<int64_t>(c)});
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

// Reads every header; without a resize, each must have the size of the first image.
void check_headers(const std::vector<ImageFolderDataset::Entry>& entries, ImageShape expected,
                   const std::string& first_path, bool resize) {
  for (const auto& e : entries) {
    ImageInfo info = read_image_info(e.path);
    RESNET_CHECK(resize || (info.height == expected.height && info.width == expected.width),
                 e.path << ": expected a " << expected.height << "x" << expected.width
                        << " image (the size of " << first_path << "), got " << info.height << "x"
                        << info.width);
  }
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(std::string name, std::vector<Entry> entries,
                                       std::vector<std::string> class_names, ImageShape shape,
                                       bool resize)
    : name_(std::move(name)),
      entries_(std::move(entries)),
      class_names_(std::move(class_names)),
      shape_(shape),
      resize_(resize) {
  RESNET_CHECK(shape_.channels == 1 || shape_.channels == 3,
               name_ << ": expected 1 or 3 channels, got " << shape_.str());
  RESNET_CHECK(shape_.height > 0 && shape_.width > 0,
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

void ImageFolderDataset::read_image(int64_t index, float* dst) const {
  const Entry& e = entry(index);
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
  RESNET_CHECK(fs::is_directory(val_dir, ec),
               dir << ": expected a subdirectory val (or test), got none");

  std::vector<std::string> classes = sorted_subdirectories(train_dir);
  RESNET_CHECK(!classes.empty(), train_dir.string()
                                     << ": expected one subdirectory per class, got none");
  check_same_classes(train_dir, val_dir, classes, sorted_subdirectories(val_dir));

  std::vector<ImageFolderDataset::Entry> train = scan_split(train_dir, classes, true);
  std::vector<ImageFolderDataset::Entry> val = scan_split(val_dir, classes, false);
  const ImageInfo first = read_image_info(train.front().path);
  const ImageShape source{first.channels, first.height, first.width};
  check_headers(train, source, train.front().path, resize);
  check_headers(val, source, train.front().path, resize);

  ImageShape shape{options.channels ? options.channels : first.channels,
                   resize ? options.height : first.height, resize ? options.width : first.width};
  DatasetPair pair;
  pair.train = std::make_shared<ImageFolderDataset>("folder train (" + dir + ")", std::move(train),
                                                    classes, shape, resize);
  pair.test = std::make_shared<ImageFolderDataset>(
      "folder " + val_dir.filename().string() + " (" + dir + ")", std::move(val), classes, shape,
      resize);
  return pair;
}

}  // namespace resnet::data
