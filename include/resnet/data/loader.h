#pragma once
// DataLoader: batches of a dataset, shuffled per epoch, augmented, prepared ahead of use by
// worker threads.
//
// Determinism (what a resumed run relies on):
//   - the order of epoch e is random_permutation(size, Rng::derive(seed, e, kOrderStream))
//     (the identity when shuffle is off), so it depends on (seed, e) only;
//   - batch b of epoch e holds order[b * batch_size, ...) (the last one shorter unless
//     drop_last);
//   - the transforms of the sample with dataset index i draw from
//     Rng::derive(seed, e, kSampleStream, i), whatever batch or thread it lands in.
// Hence make_batch(e, b) is a pure function of (dataset, options, e, b): start_epoch(e, k)
// delivers exactly batches k.. of an uninterrupted epoch e, and the worker threads deliver
// exactly what the synchronous path (prefetch = 0) does, whatever their number.
//
// A sample is made in two stages: `sample_transform` (if any) reads the example itself and
// turns it into a fixed-shape float image (sample_transform.h: crops and resizes on 8-bit
// pixels of any size); otherwise the dataset's own float image is read. Then `transform`
// (if any) works on that float image. A variable-size dataset needs a sample_transform.
//
// Unreadable images: an error while making a sample (a corrupt file, say) normally stops the
// epoch (below). With `bad_images` set, the sample is replaced by the next dataset index
// (i + 1, i + 2, ..., wrapping around) that reads, transformed with that index's own Rng
// stream, so the batch is still a pure function of (seed, epoch, batch); the failure is
// recorded in the log (file name and message, once per file).
//
// Threading: with prefetch > 0 and workers > 0, start_epoch() starts `workers` threads that
// take the epoch's samples in order, a few at a time, and fill the batches they belong to;
// no sample of batch b is started before batch b - prefetch has been taken by next(), so at
// most `prefetch` batches are in memory at once. next() hands the batches over in order.
// An exception while making a batch is handed to the consumer: next() rethrows it, message
// intact, after the batches before it, and again on every later call until start_epoch().
// start_epoch() and the destructor stop the workers and join them. One DataLoader is driven
// from one consumer thread; the dataset is read concurrently.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/sample_transform.h"
#include "resnet/data/transforms.h"
#include "resnet/tensor/tensor.h"

namespace resnet::data {

// The images that could not be read, shared by the loaders of a run; thread-safe.
class BadImageLog {
 public:
  void record(const Dataset& dataset, int64_t index, const std::string& message);
  bool known_bad(const Dataset& dataset, int64_t index) const;
  // Number of distinct files that failed.
  int64_t count() const;
  // One line per file, sorted: "PATH: message".
  std::vector<std::string> lines() const;

 private:
  mutable std::mutex mutex_;
  std::set<std::pair<const Dataset*, int64_t>> bad_;
  std::map<std::string, std::string> messages_;  // example name -> message
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  // Drop the last, shorter batch of an epoch.
  bool drop_last = false;
  uint64_t seed = 0;
  // Batches in memory ahead of the consumer; 0 builds each batch inside next().
  int64_t prefetch = 2;
  // Threads making samples when prefetch > 0; 0 builds each batch inside next().
  int64_t workers = 1;
  // Reads and shapes each sample of any size (may be null: the dataset's float images).
  std::shared_ptr<const SampleTransform> sample_transform;
  // Applied to every sample's float image (may be null); its output shape is the batch's.
  std::shared_ptr<const Transform> transform;
  // Non-null: unreadable images are replaced and recorded here instead of stopping.
  std::shared_ptr<BadImageLog> bad_images;
  // Data-parallel training: this process takes part shard_rank of shard_count of every
  // batch, the contiguous slice [n * rank / count, n * (rank + 1) / count) of its n
  // samples (empty when n < count). The batches, their order and every sample's
  // transform are those of one process: the shards of a batch together are that batch.
  int64_t shard_rank = 0;
  int64_t shard_count = 1;
};

struct Batch {
  Tensor images;                 // [N, C, H, W] f32
  Tensor labels;                 // [N] i64
  std::vector<int64_t> indices;  // dataset index of each sample (after any replacement)
  int64_t epoch = 0;
  int64_t index = 0;        // batch index within the epoch
  int64_t global_size = 0;  // samples of the whole batch, every shard's (size() unsharded)

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

class DataLoader {
 public:
  // Checks the options (batch_size > 0, prefetch >= 0, workers >= 0, at least one batch per
  // epoch, the transforms accept the dataset's images).
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }
  int64_t batches_per_epoch() const;
  // [C, H, W] of the images in a batch (after the transforms).
  ImageShape sample_shape() const { return sample_shape_; }

  // The dataset indices in the order epoch `epoch` visits them.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Batch `batch_index` of epoch `epoch`, built on the calling thread.
  Batch make_batch(int64_t epoch, int64_t batch_index) const;

  // Begins epoch `epoch` at batch `start_batch` (0 <= start_batch <= batches_per_epoch()),
  // abandoning the epoch in progress, and with workers starts preparing batches.
  void start_epoch(int64_t epoch, int64_t start_batch = 0);
  // The next batch of the current epoch; nullopt after its last. Requires start_epoch().
  std::optional<Batch> next();

 private:
  // A batch being filled by the workers.
  struct Slot {
    Batch batch;
    int64_t pending = 0;       // samples not yet written
    std::exception_ptr error;  // of the first failing sample (by position)
    int64_t error_position = 0;
  };

  bool background() const { return options_.prefetch > 0 && options_.workers > 0; }
  // An empty batch `batch_index` of `order`: indices, labels, uninitialised images.
  Batch allocate(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const;
  // Writes the sample at `position` of `batch` (its image and, after a replacement, its
  // index and label).
  void fill(Batch& batch, int64_t position) const;
  // The float image of dataset example `index` in epoch `epoch` into `dst`.
  void make_sample(int64_t epoch, int64_t index, float* dst) const;
  Batch build(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const;
  void work();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  ImageShape sample_shape_;

  // The epoch being consumed.
  bool started_ = false;
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;  // the batch next() hands over next
  std::vector<int64_t> order_;
  std::exception_ptr error_;  // sticky until start_epoch()

  // Worker state, guarded by mutex_.
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable may_claim_;  // workers wait for the consumer to free a slot
  std::condition_variable ready_;      // the consumer waits for a batch to complete
  std::map<int64_t, Slot> slots_;
  int64_t claim_batch_ = 0;     // the next sample to hand to a worker: batch ...
  int64_t claim_position_ = 0;  // ... and position within it
  int64_t end_batch_ = 0;
  int64_t chunk_ = 1;  // samples a worker takes at a time
  bool stop_ = false;
};

}  // namespace resnet::data
