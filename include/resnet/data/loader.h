#pragma once
// DataLoader: batches of a dataset, shuffled per epoch, augmented, prepared ahead of use by a
// background thread.
//
// Determinism (what a resumed run relies on):
//   - the order of epoch e is random_permutation(size, Rng::derive(seed, e, kOrderStream))
//     (the identity when shuffle is off), so it depends on (seed, e) only;
//   - batch b of epoch e holds order[b * batch_size, ...) (the last one shorter unless
//     drop_last);
//   - the transform of the sample with dataset index i draws from
//     Rng::derive(seed, e, kSampleStream, i), whatever batch or thread it lands in.
// Hence make_batch(e, b) is a pure function of (dataset, options, e, b): start_epoch(e, k)
// delivers exactly batches k.. of an uninterrupted epoch e, and the background thread
// delivers exactly what the synchronous path (prefetch = 0) does.
//
// Threading: with prefetch > 0, start_epoch() starts one producer thread that fills a queue
// of at most `prefetch` batches while the consumer trains; next() takes from it. An
// exception in the producer (a corrupt image, say) is handed to the consumer: next()
// rethrows it, message intact, after the batches made before it, and again on every later
// call until start_epoch(). start_epoch() and the destructor stop the producer and join it.
// One DataLoader is driven from one consumer thread; the dataset is read concurrently.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/transforms.h"
#include "resnet/tensor/tensor.h"

namespace resnet::data {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  // Drop the last, shorter batch of an epoch.
  bool drop_last = false;
  uint64_t seed = 0;
  // Batches prepared ahead by the background thread; 0 builds each batch inside next().
  int64_t prefetch = 2;
  // Applied to every sample (may be null); its output shape is the batch's image shape.
  std::shared_ptr<const Transform> transform;
};

struct Batch {
  Tensor images;                 // [N, C, H, W] f32
  Tensor labels;                 // [N] i64
  std::vector<int64_t> indices;  // dataset index of each sample
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

class DataLoader {
 public:
  // Checks the options (batch_size > 0, prefetch >= 0, at least one batch per epoch, the
  // transform accepts the dataset's image shape).
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }
  int64_t batches_per_epoch() const;
  // [C, H, W] of the images in a batch (after the transform).
  ImageShape sample_shape() const { return sample_shape_; }

  // The dataset indices in the order epoch `epoch` visits them.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Batch `batch_index` of epoch `epoch`, built on the calling thread.
  Batch make_batch(int64_t epoch, int64_t batch_index) const;

  // Begins epoch `epoch` at batch `start_batch` (0 <= start_batch <= batches_per_epoch()),
  // abandoning the epoch in progress, and with prefetch > 0 starts preparing batches.
  void start_epoch(int64_t epoch, int64_t start_batch = 0);
  // The next batch of the current epoch; nullopt after its last. Requires start_epoch().
  std::optional<Batch> next();

 private:
  // Builds batch `batch_index` from `order`; returns nullopt if `stop` is raised meanwhile.
  std::optional<Batch> build(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index,
                             const std::atomic<bool>* stop) const;
  void produce(std::vector<int64_t> order, int64_t epoch, int64_t first, int64_t end);
  void stop_producer();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  ImageShape sample_shape_;

  // The epoch being consumed.
  bool started_ = false;
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;
  std::vector<int64_t> order_;  // used by the synchronous path
  std::exception_ptr error_;    // sticky until start_epoch()

  // Producer state, guarded by mutex_.
  std::thread producer_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<Batch> queue_;
  std::exception_ptr producer_error_;
  bool producer_done_ = false;
  std::atomic<bool> stop_{false};
};

}  // namespace resnet::data
