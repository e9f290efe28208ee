#include "resnet/data/fake_data.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/data/rng.h"

namespace resnet::data {

namespace {

// A bound that keeps a typo (fake:3x224x224:10:1000000) from taking all memory.
constexpr int64_t kMaxFakeBytes = int64_t{1} << 31;

// The stream of the synthetic data, separate from the loader's streams (rng.h).
constexpr uint64_t kFakeDataStream = 4;

// `split_id` (0 train, 1 test) keeps the two splits' streams apart.
std::shared_ptr<const Dataset> make_split(const FakeDataOptions& o, const char* split,
                                          uint64_t split_id, int64_t size) {
  Rng rng = Rng::derive(o.seed, kFakeDataStream, split_id);
  std::vector<uint8_t> pixels(static_cast<size_t>(size * o.shape.numel()));
  for (size_t i = 0; i < pixels.size(); i += 8) {
    const uint64_t word = rng.next_u64();
    for (size_t b = 0; b < 8 && i + b < pixels.size(); ++b)
      pixels[i + b] = static_cast<uint8_t>(word >> (8 * b));
  }
  std::vector<int64_t> labels(static_cast<size_t>(size));
  for (auto& label : labels) label = rng.randint(0, o.num_classes);
  return std::make_shared<InMemoryDataset>(
      std::string("fake ") + split + " (" + o.shape.str() + ")", o.shape, std::move(pixels),
      std::move(labels), o.num_classes);
}

// A positive decimal number of at most 9 digits, or -1.
int64_t parse_count(const std::string& s) {
  if (s.empty() || s.size() > 9) return -1;
  for (char c : s)
    if (c < '0' || c > '9') return -1;
  const int64_t v = std::stoll(s);
  return v > 0 ? v : -1;
}

}  // namespace

DatasetPair make_fake_data(const FakeDataOptions& o) {
  RESNET_CHECK(o.shape.channels > 0 && o.shape.height > 0 && o.shape.width > 0,
               "dataset fake: expected a positive image shape CxHxW, got " << o.shape.str());
  RESNET_CHECK(o.num_classes > 0,
               "dataset fake: expected a positive class count, got " << o.num_classes);
  RESNET_CHECK(o.train_size > 0,
               "dataset fake: expected a positive image count, got " << o.train_size);
  const int64_t test_size = std::max<int64_t>(1, o.train_size / 5);
  const int64_t images = o.train_size + test_size;
  // Divided, not multiplied: the dims may each be up to 9 digits.
  RESNET_CHECK(kMaxFakeBytes / images / o.shape.channels / o.shape.height >= o.shape.width,
               "dataset fake: expected at most " << kMaxFakeBytes << " bytes of images, got "
                                                 << images << " images of " << o.shape.str());
  return {make_split(o, "train", 0, o.train_size), make_split(o, "test", 1, test_size)};
}

FakeDataOptions parse_fake_data_spec(const std::string& spec) {
  FakeDataOptions o;
  std::vector<std::string> parts;
  size_t begin = 0;
  for (size_t colon; (colon = spec.find(':', begin)) != std::string::npos; begin = colon + 1)
    parts.push_back(spec.substr(begin, colon - begin));
  parts.push_back(spec.substr(begin));
  auto fail = [&](const std::string& what) {
    RESNET_FAIL("dataset fake:" << spec << ": expected fake:CxHxW[:CLASSES[:N]], " << what);
  };
  if (parts.size() > 3) fail("got " + std::to_string(parts.size()) + " fields");
  std::vector<int64_t> dims;
  size_t from = 0;
  for (size_t x; from <= parts[0].size(); from = x + 1) {
    x = parts[0].find('x', from);
    if (x == std::string::npos) x = parts[0].size();
    dims.push_back(parse_count(parts[0].substr(from, x - from)));
  }
  if (dims.size() != 3 || dims[0] < 0 || dims[1] < 0 || dims[2] < 0)
    fail("got image shape '" + parts[0] + "'");
  o.shape = {dims[0], dims[1], dims[2]};
  if (parts.size() > 1 && (o.num_classes = parse_count(parts[1])) < 0)
    fail("got class count '" + parts[1] + "'");
  if (parts.size() > 2 && (o.train_size = parse_count(parts[2])) < 0)
    fail("got image count '" + parts[2] + "'");
  return o;
}

}  // namespace resnet::data
