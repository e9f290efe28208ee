#pragma once
// Synthetic datasets, as torchvision.datasets.FakeData: images of uniform random bytes
// with uniform random labels, drawn from a seed. They measure the training step without
// the cost of reading and decoding files (the step on photos is then compared with the
// same step on these), and let a network be tried without any data set installed.
//
// Spec: fake:CxHxW[:CLASSES[:N]], for example fake:3x224x224:1000:640 (CLASSES defaults
// to 10, N, the training set's size, to 1000; the test set has N / 5, at least 1).

#include <string>

#include "resnet/data/dataset.h"

namespace resnet::data {

struct FakeDataOptions {
  ImageShape shape{3, 224, 224};
  int64_t num_classes = 10;
  int64_t train_size = 1000;
  uint64_t seed = 0;
};

// Train and test splits of synthetic images, held in memory as 8-bit pixels. Checks the
// options (positive dims, at most 2^31 bytes in all) and names them in its messages.
DatasetPair make_fake_data(const FakeDataOptions& options);

// Parses "CxHxW[:CLASSES[:N]]" (what follows "fake:") into options; throws naming `spec`.
FakeDataOptions parse_fake_data_spec(const std::string& spec);

}  // namespace resnet::data
