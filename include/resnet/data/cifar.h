#pragma once
// CIFAR-10 and CIFAR-100 in their binary form (Krizhevsky 2009).
//
//   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test);
//              each record: 1 label byte (0..9), then 3072 pixel bytes;
//              class names from batches.meta.txt when present (one per line).
//   CIFAR-100: train.bin, test.bin; each record: coarse label (0..19), fine label (0..99),
//              3072 pixel bytes; the fine label is the label; class names from
//              fine_label_names.txt when present.
//   Pixels: the red, green and blue 32x32 planes in turn, i.e. already [3, 32, 32].
//
// A file must hold a whole, non-zero number of records and every label must be in range;
// errors name the file, what was expected and what was found. `dir` may also be the folder
// that contains the tarball's directory (cifar-10-batches-bin, cifar-100-binary).

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

enum class CifarKind { cifar10, cifar100 };

struct CifarRecords {
  std::vector<uint8_t> pixels;  // [N, 3, 32, 32]
  std::vector<int64_t> labels;  // fine labels for CIFAR-100
};

// Appends the records of one binary file to `into`.
void read_cifar_file(const std::string& path, CifarKind kind, CifarRecords& into);

DatasetPair open_cifar_dir(const std::string& dir, CifarKind kind);

}  // namespace resnet::data
