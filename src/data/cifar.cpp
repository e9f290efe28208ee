#include "resnet/data/cifar.h"

#include <algorithm>
#include <filesystem>

#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;
// Class-name files are a few hundred bytes; anything far larger is not one.
constexpr uint64_t kMaxNamesFile = 1 << 20;

struct KindInfo {
  const char* name;
  const char* tar_dir;  // the directory the official tarball unpacks to
  int64_t label_bytes;
  int64_t num_classes;
  const char* names_file;
  std::vector<std::string> train_files;
  std::vector<std::string> test_files;
};

KindInfo info(CifarKind kind) {
  if (kind == CifarKind::cifar10) {
    return {"cifar10",
            "cifar-10-batches-bin",
            1,
            10,
            "batches.meta.txt",
            {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
             "data_batch_5.bin"},
            {"test_batch.bin"}};
  }
  return {"cifar100",    "cifar-100-binary", 2, 100, "fine_label_names.txt",
          {"train.bin"}, {"test.bin"}};
}

std::vector<std::string> read_class_names(const std::string& path, int64_t num_classes) {
  io::InputFile file(path);
  RESNET_CHECK(file.size() <= kMaxNamesFile, path << ": expected a class-name list of at most "
                                                  << kMaxNamesFile << " bytes, got "
                                                  << file.size());
  std::string text(static_cast<size_t>(file.size()), '\0');
  file.read_at(0, text.data(), text.size(), "class names");
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    // The official files end lines with "\n" and the list with blank lines; trim both.
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
    start = end + 1;
  }
  RESNET_CHECK(
      static_cast<int64_t>(names.size()) == num_classes,
      path << ": expected " << num_classes << " class names (one per line), got " << names.size());
  return names;
}

std::shared_ptr<const Dataset> open_split(const std::string& dir, const KindInfo& k,
                                          const std::vector<std::string>& files, const char* split,
                                          CifarKind kind, const std::vector<std::string>& names) {
  CifarRecords records;
  for (const std::string& file : files) {
    read_cifar_file((fs::path(dir) / file).string(), kind, records);
  }
  return std::make_shared<InMemoryDataset>(std::string(k.name) + " " + split + " (" + dir + ")",
                                           ImageShape{3, 32, 32}, std::move(records.pixels),
                                           std::move(records.labels), k.num_classes, names);
}

}  // namespace

void read_cifar_file(const std::string& path, CifarKind kind, CifarRecords& into) {
  const KindInfo k = info(kind);
  io::InputFile file(path);
  const uint64_t record = static_cast<uint64_t>(k.label_bytes + kPixels);
  const uint64_t size = file.size();
  RESNET_CHECK(size > 0 && size % record == 0,
               path << ": expected a whole, non-zero number of " << record << "-byte " << k.name
                    << " records (" << k.label_bytes << " label byte"
                    << (k.label_bytes > 1 ? "s" : "") << " + " << kPixels << " pixel bytes), got "
                    << size << " bytes (" << size / record << " records and " << size % record
                    << " bytes over)");
  const uint64_t count = size / record;
  // The size was checked against the real file above, so these allocations are honest.
  const size_t first_pixel = into.pixels.size();
  const size_t first_label = into.labels.size();
  into.pixels.resize(first_pixel + count * kPixels);
  into.labels.resize(first_label + count);
  std::vector<uint8_t> buf(record * std::min<uint64_t>(count, 1024));
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min<uint64_t>(count - done, 1024);
    file.read_at(done * record, buf.data(), n * record, "records");
    for (uint64_t r = 0; r < n; ++r) {
      const uint8_t* rec = buf.data() + r * record;
      const uint64_t index = done + r;
      if (kind == CifarKind::cifar100) {
        RESNET_CHECK(rec[0] < 20, path << ": expected coarse labels in [0, 20), got " << int{rec[0]}
                                       << " at record " << index);
      }
      const int64_t label = rec[k.label_bytes - 1];
      RESNET_CHECK(label < k.num_classes, path << ": expected labels in [0, " << k.num_classes
                                               << "), got " << label << " at record " << index);
      into.labels[first_label + index] = label;
      std::copy(rec + k.label_bytes, rec + record,
                into.pixels.data() + first_pixel + index * kPixels);
    }
    done += n;
  }
}

DatasetPair open_cifar_dir(const std::string& dir_arg, CifarKind kind) {
  const KindInfo k = info(kind);
  std::error_code ec;
  RESNET_CHECK(fs::is_directory(dir_arg, ec),
               dir_arg << ": expected a directory with the " << k.name << " binary files, got "
                       << (fs::exists(dir_arg, ec) ? "a file" : "no such directory"));
  std::string dir = dir_arg;
  const fs::path nested = fs::path(dir_arg) / k.tar_dir;
  if (!fs::exists(fs::path(dir_arg) / k.test_files[0], ec) && fs::is_directory(nested, ec)) {
    dir = nested.string();
  }
  for (const auto* list : {&k.train_files, &k.test_files}) {
    for (const std::string& file : *list) {
      RESNET_CHECK(fs::exists(fs::path(dir) / file, ec),
                   dir << ": expected " << k.name << " file " << file << ", got no such file");
    }
  }
  std::vector<std::string> names;
  const fs::path names_path = fs::path(dir) / k.names_file;
  if (fs::exists(names_path, ec)) names = read_class_names(names_path.string(), k.num_classes);
  DatasetPair pair;
  pair.train = open_split(dir, k, k.train_files, "train", kind, names);
  pair.test = open_split(dir, k, k.test_files, "test", kind, names);
  return pair;
}

}  // namespace resnet::data
