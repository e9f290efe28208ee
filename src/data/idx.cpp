#include "resnet/data/idx.h"

#include <cstdio>
#include <filesystem>

#include "resnet/core/error.h"
#include "resnet/data/byte_reader.h"

namespace resnet::data {

namespace fs = std::filesystem;

namespace {

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", p[i]);
    s += buf;
  }
  return s;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads the magic and the dimensions of an IDX file of unsigned bytes with `rank` dimensions.
std::vector<uint64_t> read_header(ByteReader& in, int rank, const char* kind) {
  uint8_t magic[4];
  in.read_exact(magic, 4, "IDX magic");
  const uint8_t want[4] = {0, 0, 0x08, static_cast<uint8_t>(rank)};
  RESNET_CHECK(magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08 && magic[3] == rank,
               in.path() << ": expected IDX " << kind << " magic " << hex_bytes(want, 4)
                         << " (unsigned bytes, " << rank << " dimension" << (rank > 1 ? "s" : "")
                         << "), got " << hex_bytes(magic, 4));
  std::vector<uint8_t> raw(4 * static_cast<size_t>(rank));
  in.read_exact(raw.data(), raw.size(), "IDX dimensions");
  std::vector<uint64_t> dims;
  for (int i = 0; i < rank; ++i) dims.push_back(big_endian_u32(raw.data() + 4 * i));
  return dims;
}

// Checks the data size a header claims against what the file can hold, before allocating.
void check_claimed_size(const ByteReader& in, uint64_t header_bytes, uint64_t claimed,
                        const std::string& claim) {
  if (!in.gzip()) {
    RESNET_CHECK(in.file_size() == header_bytes + claimed,
                 in.path() << ": expected " << header_bytes << " + " << claimed
                           << " bytes as its header claims (" << claim << "), got a file of "
                           << in.file_size() << " bytes");
    return;
  }
  RESNET_CHECK(claimed <= in.max_content_size(),
               in.path() << ": expected at most " << in.max_content_size()
                         << " bytes of data in a gzip file of " << in.file_size()
                         << " bytes, got a header that claims " << claimed << " (" << claim << ")");
}

std::string find_idx_file(const std::string& dir, const std::string& prefix,
                          const std::string& suffix, const std::string& hint) {
  // "train-images" + "idx3-ubyte": the original site's names, their .gz, and the dotted
  // variant some mirrors use.
  const std::string names[] = {prefix + "-" + suffix + ".gz", prefix + "-" + suffix,
                               prefix + "." + suffix + ".gz", prefix + "." + suffix};
  for (const std::string& name : names) {
    fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (fs::exists(p, ec)) return p.string();
  }
  RESNET_FAIL(dir << ": expected " << names[1] << " or " << names[0] << ", got neither" << hint);
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  ByteReader in(path);
  std::vector<uint64_t> dims = read_header(in, 3, "images");
  const uint64_t count = dims[0], rows = dims[1], cols = dims[2];
  RESNET_CHECK(count > 0, path << ": expected at least one image, got a count of 0");
  RESNET_CHECK(rows > 0 && cols > 0,
               path << ": expected a positive image size, got " << rows << "x" << cols);
  // rows, cols and count are below 2^32 each, so rows * cols cannot overflow; the product
  // with count can, hence the division.
  const uint64_t per_image = rows * cols;
  RESNET_CHECK(count <= UINT64_MAX / per_image, path << ": expected a representable size, got "
                                                     << count << " images of " << rows << "x"
                                                     << cols);
  const uint64_t claimed = count * per_image;
  check_claimed_size(
      in, 16, claimed,
      std::to_string(count) + " images of " + std::to_string(rows) + "x" + std::to_string(cols));
  IdxImages images;
  images.count = static_cast<int64_t>(count);
  images.rows = static_cast<int64_t>(rows);
  images.cols = static_cast<int64_t>(cols);
  images.pixels = in.read_vector(claimed, "pixels");
  in.expect_end("the pixels");
  return images;
}

std::vector<int64_t> read_idx_labels(const std::string& path) {
  ByteReader in(path);
  const uint64_t count = read_header(in, 1, "labels")[0];
  check_claimed_size(in, 8, count, std::to_string(count) + " labels");
  std::vector<uint8_t> bytes = in.read_vector(count, "labels");
  in.expect_end("the labels");
  return std::vector<int64_t>(bytes.begin(), bytes.end());
}

std::shared_ptr<InMemoryDataset> open_idx_dataset(const std::string& images_path,
                                                  const std::string& labels_path,
                                                  const std::string& name, int64_t num_classes,
                                                  std::vector<std::string> class_names) {
  // Labels first: they are small, and a mismatch is then reported before the big read.
  std::vector<int64_t> labels = read_idx_labels(labels_path);
  IdxImages images = read_idx_images(images_path);
  RESNET_CHECK(static_cast<int64_t>(labels.size()) == images.count,
               labels_path << ": expected " << images.count << " labels, one per image of "
                           << images_path << ", got " << labels.size());
  check_labels(labels, num_classes, labels_path);
  return std::make_shared<InMemoryDataset>(name, ImageShape{1, images.rows, images.cols},
                                           std::move(images.pixels), std::move(labels), num_classes,
                                           std::move(class_names));
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

DatasetPair open_mnist_dir(const std::string& dir, IdxFlavor flavor,
                           const std::string& missing_hint) {
  const bool fashion = flavor == IdxFlavor::fashion_mnist;
  const std::string what = fashion ? "fashion-mnist" : "mnist";
  const std::string hint = missing_hint.empty() ? "" : " (" + missing_hint + ")";
  std::error_code ec;
  RESNET_CHECK(fs::is_directory(dir, ec),
               dir << ": expected a directory with the " << what << " IDX files, got "
                   << (fs::exists(dir, ec) ? "a file" : "no such directory") << hint);
  std::vector<std::string> names =
      fashion ? fashion_mnist_class_names() : std::vector<std::string>{};
  DatasetPair pair;
  struct Split {
    const char* prefix;  // of the file names
    const char* name;
    std::shared_ptr<const Dataset>* slot;
  };
  for (const Split& split :
       {Split{"train", "train", &pair.train}, Split{"t10k", "test", &pair.test}}) {
    std::string images =
        find_idx_file(dir, std::string(split.prefix) + "-images", "idx3-ubyte", hint);
    std::string labels =
        find_idx_file(dir, std::string(split.prefix) + "-labels", "idx1-ubyte", hint);
    *split.slot =
        open_idx_dataset(images, labels, what + " " + split.name + " (" + dir + ")", 10, names);
  }
  return pair;
}

}  // namespace resnet::data
