// The loader's worker threads on a folder of images of many sizes with the training crop:
// the batches are a pure function of (seed, epoch, batch), whatever the number of workers,
// an interrupted epoch resumes with the same batches, and unreadable images are replaced
// deterministically (or stop the epoch, naming the file).

#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/image_folder.h"
#include "resnet/data/loader.h"

namespace resnet::data {
namespace {

namespace fs = std::filesystem;

class WorkersTest : public ::testing::Test {
 protected:
  // 23 PNGs of sizes 9..53 (three classes); image `bad` (if >= 0) keeps a valid header but
  // loses its pixel data.
  std::shared_ptr<const Dataset> folder(int64_t bad = -1) {
    std::string bad_path;
    for (int64_t i = 0; i < 23; ++i) {
      const ImageShape s{3, 9 + (i * 7) % 45, 11 + (i * 5) % 41};
      std::vector<uint8_t> px(static_cast<size_t>(s.numel()));
      for (int64_t p = 0; p < s.numel(); ++p) px[size_t(p)] = testing::test_pixel(i, p);
      const std::string name = "img" + std::to_string(100 + i) + ".png";
      const fs::path path = dir_.path() / "train" / std::to_string(i % 3) / name;
      fs::create_directories(path.parent_path());
      write_png(path.string(), px.data(), s);
      if (i == bad) bad_path = path.string();
    }
    FolderOptions o;
    o.mixed_sizes = true;
    o.val_optional = true;
    auto ds = open_image_folder(dir_.path().string(), o).train;
    for (int64_t k = 0; k < ds->size(); ++k) {
      if (ds->example_name(k) == bad_path) bad_index_ = k;
    }
    if (!bad_path.empty()) {
      std::string bytes = testing::read_bytes(bad_path);
      testing::write_bytes(bad_path, bytes.substr(0, 60));  // header intact, IDAT cut
    }
    return ds;
  }

  static LoaderOptions options(int64_t workers, int64_t prefetch) {
    LoaderOptions o;
    o.batch_size = 5;
    o.seed = 99;
    o.workers = workers;
    o.prefetch = prefetch;
    o.sample_transform = std::make_shared<RandomResizedCrop>(8);
    o.transform = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
        std::make_shared<RandomHorizontalFlip>(),
        std::make_shared<Normalize>(std::vector<float>{0.4f, 0.5f, 0.6f},
                                    std::vector<float>{0.2f, 0.25f, 0.3f}),
        std::make_shared<RandomErasing>(0.5)});
    return o;
  }

  static std::vector<Batch> drain(DataLoader& loader, int64_t epoch, int64_t start = 0) {
    loader.start_epoch(epoch, start);
    std::vector<Batch> out;
    while (std::optional<Batch> b = loader.next()) out.push_back(std::move(*b));
    return out;
  }

  static void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].index, b[i].index);
      EXPECT_EQ(a[i].indices, b[i].indices);
      ASSERT_EQ(a[i].images.shape(), b[i].images.shape());
      EXPECT_EQ(max_abs_diff(a[i].images, b[i].images), 0.0f) << "batch " << i;
      for (int64_t k = 0; k < a[i].size(); ++k)
        EXPECT_EQ(a[i].labels.i64()[k], b[i].labels.i64()[k]);
    }
  }

  testing::TempDir dir_;
  int64_t bad_index_ = -1;  // the dataset index of the bad file
};

TEST_F(WorkersTest, OneAndThreeWorkersGiveTheSynchronousBatches) {
  auto ds = folder();
  ASSERT_TRUE(ds->variable_size());
  DataLoader sync(ds, options(0, 0)), one(ds, options(1, 2)), three(ds, options(3, 2));
  EXPECT_EQ(three.sample_shape(), (ImageShape{3, 8, 8}));
  for (int64_t epoch : {0, 1}) {
    const std::vector<Batch> want = drain(sync, epoch);
    ASSERT_EQ(want.size(), 5u);
    EXPECT_EQ(want.back().size(), 3);
    expect_same(drain(one, epoch), want);
    expect_same(drain(three, epoch), want);
  }
  DataLoader tight(ds, options(3, 1));  // one batch in flight at a time
  expect_same(drain(tight, 1), drain(sync, 1));
}

TEST_F(WorkersTest, StoppingAndRestartingMidEpochGivesTheSameBatches) {
  auto ds = folder();
  DataLoader whole(ds, options(3, 2));
  const std::vector<Batch> want = drain(whole, 2);
  for (int64_t stop_after : {1, 3}) {
    DataLoader first(ds, options(3, 2));
    first.start_epoch(2);
    std::vector<Batch> got;
    for (int64_t b = 0; b < stop_after; ++b) got.push_back(*first.next());
    DataLoader restarted(ds, options(2, 3));  // a fresh process, another worker count
    for (Batch& b : drain(restarted, 2, stop_after)) got.push_back(std::move(b));
    expect_same(got, want);
  }
}

TEST_F(WorkersTest, WithoutSkippingTheFirstBadFileStopsTheEpochNamingIt) {
  auto ds = folder(7);
  ASSERT_GE(bad_index_, 5);
  const std::string bad = ds->example_name(bad_index_);
  for (int64_t workers : {0, 1, 3}) {
    LoaderOptions o = options(workers, 2);
    o.shuffle = false;
    DataLoader loader(ds, o);
    loader.start_epoch(0);
    for (int64_t b = 0; b < bad_index_ / 5; ++b) ASSERT_TRUE(loader.next().has_value());
    EXPECT_IO_ERROR(loader.next(), bad, "expected a complete PNG");  // the batch holding it
    EXPECT_IO_ERROR(loader.next(), bad);                             // sticky
  }
}

TEST_F(WorkersTest, SkippingReplacesABadFileByTheNextIndexAndLogsIt) {
  auto ds = folder(7);
  const int64_t bad = bad_index_, next = bad_index_ + 1;
  ASSERT_LT(next, ds->size());
  std::vector<std::vector<Batch>> runs;
  for (int64_t workers : {0, 3}) {
    LoaderOptions o = options(workers, 2);
    o.bad_images = std::make_shared<BadImageLog>();
    DataLoader loader(ds, o);
    runs.push_back(drain(loader, 0));
    EXPECT_EQ(o.bad_images->count(), 1);
    ASSERT_EQ(o.bad_images->lines().size(), 1u);
    EXPECT_EQ(o.bad_images->lines()[0].rfind(ds->example_name(bad), 0), 0u)
        << o.bad_images->lines()[0];
  }
  expect_same(runs[0], runs[1]);
  // The sample drawn as the bad one is the next example, with its label and augmentation.
  int64_t nexts = 0, bads = 0;
  for (const Batch& b : runs[0]) {
    for (int64_t k = 0; k < b.size(); ++k) {
      nexts += b.indices[size_t(k)] == next;
      bads += b.indices[size_t(k)] == bad;
      EXPECT_EQ(b.labels.i64()[k], ds->label(b.indices[size_t(k)]));
    }
  }
  EXPECT_EQ(bads, 0);
  EXPECT_EQ(nexts, 2);
  LoaderOptions o = options(0, 0);
  o.shuffle = false;
  o.bad_images = std::make_shared<BadImageLog>();
  const Batch b = DataLoader(ds, o).make_batch(0, bad / 5);
  const Batch want = DataLoader(ds, o).make_batch(0, next / 5);
  const int64_t sample = 3 * 8 * 8;
  // Made with the next example's own Rng stream: equal to that example in its own place.
  for (int64_t k = 0; k < sample; ++k) {
    ASSERT_EQ(b.images.f32()[(bad % 5) * sample + k], want.images.f32()[(next % 5) * sample + k]);
  }
}

TEST_F(WorkersTest, VariableSizeDatasetNeedsASampleTransform) {
  auto ds = folder();
  LoaderOptions o = options(1, 2);
  o.sample_transform = nullptr;
  o.transform = nullptr;
  EXPECT_IO_ERROR(DataLoader(ds, o), "per-sample transform", "differ in size");
  EXPECT_IO_ERROR(DataLoader(ds, options(-1, 2)), "workers >= 0");
}

}  // namespace
}  // namespace resnet::data
