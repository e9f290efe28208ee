#pragma once
// open_dataset: a dataset spec string to its train and test splits.
//
//   fashion-mnist              Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist
//   fashion-mnist:DIR          Fashion-MNIST IDX files in DIR (class names T-shirt/top, ...)
//   mnist:DIR                  MNIST IDX files in DIR (class names "0" .. "9")
//   cifar10:DIR                CIFAR-10 binary batches (cifar.h)
//   cifar100:DIR               CIFAR-100 binary, fine labels (cifar.h)
//   folder:DIR                 image folder DIR/train/CLASS/*.png|jpg, DIR/val/...
//   (image_folder.h);
//                              images of one size give a fixed-size dataset, images of
//                              several sizes a variable-size one (dataset.h)
//   folder:DIR:HxW             the same, every image resized to H x W
//   fake:CxHxW[:CLASSES[:N]]   random images and labels (fake_data.h)
//
// A spec of another form is refused with a message listing these forms.

#include <string>

#include "resnet/data/dataset.h"

namespace resnet::data {

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* kDebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct OpenOptions {
  // The test split may be missing (image folders without val/): the pair's test is then null.
  bool test_optional = false;
  // Image folders: files whose header cannot be read are left out instead of refused.
  bool skip_bad_images = false;
};

DatasetPair open_dataset(const std::string& spec, const OpenOptions& options = {});

// Fashion-MNIST from `dir` (by default Debian's); when the directory or a file is missing,
// the message names the package dataset-fashion-mnist that provides it.
DatasetPair open_debian_fashion_mnist(const std::string& dir = kDebianFashionMnistDir);

// The forms above, one per line, for --help texts.
std::string dataset_spec_help();

}  // namespace resnet::data
