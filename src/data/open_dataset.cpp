#include "resnet/data/open_dataset.h"

#include <filesystem>
#include <string_view>

#include "resnet/core/error.h"
#include "resnet/data/cifar.h"
#include "resnet/data/fake_data.h"
#include "resnet/data/idx.h"
#include "resnet/data/image_folder.h"

namespace resnet::data {

namespace {

constexpr const char* kForms =
    "fashion-mnist, fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR, "
    "folder:DIR:HxW, fake:CxHxW[:CLASSES[:N]]";

bool take_prefix(std::string_view spec, std::string_view prefix, std::string& rest) {
  if (spec.substr(0, prefix.size()) != prefix) return false;
  rest = std::string(spec.substr(prefix.size()));
  return true;
}

// "32x48" -> 32, 48; false when `s` is not of that form.
bool parse_size(const std::string& s, int64_t& height, int64_t& width) {
  const size_t x = s.find('x');
  if (x == std::string::npos || x == 0 || x + 1 == s.size() || x > 9 || s.size() - x - 1 > 9) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (i != x && (s[i] < '0' || s[i] > '9')) return false;
  }
  height = std::stoll(s.substr(0, x));
  width = std::stoll(s.substr(x + 1));
  return true;
}

DatasetPair open_folder_spec(const std::string& rest, const OpenOptions& open) {
  // A trailing ":HxW" is a resize, unless the whole text names a directory (paths can
  // contain colons).
  FolderOptions options;
  options.mixed_sizes = true;
  options.val_optional = open.test_optional;
  options.skip_bad_images = open.skip_bad_images;
  std::string dir = rest;
  const size_t colon = rest.rfind(':');
  std::error_code ec;
  if (colon != std::string::npos && !std::filesystem::is_directory(rest, ec)) {
    const std::string size = rest.substr(colon + 1);
    if (parse_size(size, options.height, options.width)) {
      dir = rest.substr(0, colon);
      RESNET_CHECK(options.height > 0 && options.width > 0,
                   "dataset folder:" << rest << ": expected a positive size HxW, got " << size);
    }
  }
  return open_image_folder(dir, options);
}

}  // namespace

std::string dataset_spec_help() {
  return "fashion-mnist       Debian's dataset-fashion-mnist (" +
         std::string(kDebianFashionMnistDir) +
         ")\n"
         "fashion-mnist:DIR   Fashion-MNIST IDX files (.gz or raw) in DIR\n"
         "mnist:DIR           MNIST IDX files (.gz or raw) in DIR\n"
         "cifar10:DIR         CIFAR-10 binary batches in DIR\n"
         "cifar100:DIR        CIFAR-100 binary files in DIR (fine labels)\n"
         "folder:DIR          DIR/train/CLASS/*.png|jpg|jpeg and DIR/val/CLASS/..., any sizes\n"
         "folder:DIR:HxW      the same, every image resized to H x W\n"
         "fake:CxHxW[:K[:N]]  N random images (default 1000, test N/5) of K classes (10)\n";
}

DatasetPair open_debian_fashion_mnist(const std::string& dir) {
  return open_mnist_dir(dir, IdxFlavor::fashion_mnist,
                        "install the Debian package dataset-fashion-mnist with apt-get install "
                        "dataset-fashion-mnist, or give fashion-mnist:DIR");
}

DatasetPair open_dataset(const std::string& spec, const OpenOptions& options) {
  std::string rest;
  if (spec == "fashion-mnist") return open_debian_fashion_mnist();
  auto need_dir = [&](const char* form) {
    RESNET_CHECK(!rest.empty(),
                 "dataset " << spec << ": expected " << form << ":DIR with a directory, got none");
  };
  if (take_prefix(spec, "fashion-mnist:", rest)) {
    need_dir("fashion-mnist");
    return open_mnist_dir(rest, IdxFlavor::fashion_mnist);
  }
  if (take_prefix(spec, "mnist:", rest)) {
    need_dir("mnist");
    return open_mnist_dir(rest, IdxFlavor::mnist);
  }
  if (take_prefix(spec, "cifar10:", rest)) {
    need_dir("cifar10");
    return open_cifar_dir(rest, CifarKind::cifar10);
  }
  if (take_prefix(spec, "cifar100:", rest)) {
    need_dir("cifar100");
    return open_cifar_dir(rest, CifarKind::cifar100);
  }
  if (take_prefix(spec, "folder:", rest)) {
    need_dir("folder");
    return open_folder_spec(rest, options);
  }
  if (take_prefix(spec, "fake:", rest)) return make_fake_data(parse_fake_data_spec(rest));
  RESNET_FAIL("dataset: expected one of " << kForms << ", got '" << spec << "'");
}

}  // namespace resnet::data
