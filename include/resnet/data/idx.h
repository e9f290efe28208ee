#pragma once
// IDX files (LeCun's MNIST format, also used by Fashion-MNIST), raw or gzipped.
//
//   images (idx3-ubyte): 00 00 08 03, then count, rows, cols as big-endian u32, then
//                        count * rows * cols pixel bytes, row-major, 0 = background
//   labels (idx1-ubyte): 00 00 08 01, then count as big-endian u32, then count label bytes
//
// Readers check the magic, that the dimensions are positive, and that the data is exactly
// as long as the header says: a raw file's size is checked before anything is allocated; a
// gzip stream is checked as it decompresses (it may neither end early nor run past the
// header's size). Errors name the file, what was expected and what was found.

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

struct IdxImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

IdxImages read_idx_images(const std::string& path);
std::vector<int64_t> read_idx_labels(const std::string& path);

// One split from an images file and a labels file: images become [1, rows, cols]; the
// label count must equal the image count and every label lie in [0, num_classes).
std::shared_ptr<InMemoryDataset> open_idx_dataset(const std::string& images_path,
                                                  const std::string& labels_path,
                                                  const std::string& name, int64_t num_classes,
                                                  std::vector<std::string> class_names = {});

enum class IdxFlavor { mnist, fashion_mnist };

// The train (train-*) and test (t10k-*) splits of MNIST or Fashion-MNIST in `dir`. Each file
// may be named FILE, FILE.gz, or with a '.' before "idx" (train-images.idx3-ubyte), as the
// various distributions ship them. `missing_hint` is appended to the message when the
// directory or a file is missing (the Debian package that provides it, say).
DatasetPair open_mnist_dir(const std::string& dir, IdxFlavor flavor,
                           const std::string& missing_hint = "");

// T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace resnet::data
