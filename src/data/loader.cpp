#include "resnet/data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "resnet/core/error.h"
#include "resnet/data/rng.h"

namespace resnet::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  RESNET_CHECK(dataset_ != nullptr, "DataLoader: expected a dataset, got null");
  RESNET_CHECK(options_.batch_size > 0,
               "DataLoader: expected batch_size > 0, got " << options_.batch_size);
  RESNET_CHECK(options_.prefetch >= 0,
               "DataLoader: expected prefetch >= 0, got " << options_.prefetch);
  RESNET_CHECK(batches_per_epoch() > 0,
               "DataLoader: expected at least one batch per epoch, got "
                   << dataset_->size() << " examples in " << dataset_->name() << " with batch size "
                   << options_.batch_size << (options_.drop_last ? " and drop_last" : ""));
  const ImageShape in = dataset_->image_shape();
  sample_shape_ = options_.transform ? options_.transform->output_shape(in) : in;
}

DataLoader::~DataLoader() {
  stop_producer();
}

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  RESNET_CHECK(epoch >= 0, "DataLoader: expected an epoch >= 0, got " << epoch);
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
    std::iota(order.begin(), order.end(), int64_t{0});
    return order;
  }
  Rng rng = Rng::derive(options_.seed, static_cast<uint64_t>(epoch), Rng::kOrderStream);
  return random_permutation(dataset_->size(), rng);
}

Batch DataLoader::make_batch(int64_t epoch, int64_t batch_index) const {
  RESNET_CHECK(batch_index >= 0 && batch_index < batches_per_epoch(),
               "DataLoader: expected a batch index in [0, " << batches_per_epoch() << "), got "
                                                            << batch_index);
  return *build(epoch_order(epoch), epoch, batch_index, nullptr);
}

std::optional<Batch> DataLoader::build(const std::vector<int64_t>& order, int64_t epoch,
                                       int64_t batch_index, const std::atomic<bool>* stop) const {
  const int64_t first = batch_index * options_.batch_size;
  const int64_t n = std::min(options_.batch_size, dataset_->size() - first);
  const ImageShape in = dataset_->image_shape();
  const int64_t sample = sample_shape_.numel();
  Batch batch;
  batch.epoch = epoch;
  batch.index = batch_index;
  batch.images = Tensor({n, sample_shape_.channels, sample_shape_.height, sample_shape_.width});
  batch.labels = Tensor({n}, DType::i64);
  float* images = batch.images.f32();
  int64_t* labels = batch.labels.i64();
  for (int64_t k = 0; k < n; ++k) {
    if (stop && stop->load(std::memory_order_relaxed)) return std::nullopt;
    const int64_t index = order[static_cast<size_t>(first + k)];
    batch.indices.push_back(index);
    labels[k] = dataset_->label(index);
    float* dst = images + k * sample;
    if (!options_.transform) {
      dataset_->read_image(index, dst);
      continue;
    }
    Tensor image(in.shape());
    dataset_->read_image(index, image.f32());
    Rng rng = Rng::derive(options_.seed, static_cast<uint64_t>(epoch), Rng::kSampleStream,
                          static_cast<uint64_t>(index));
    Tensor out = options_.transform->apply(image, rng);
    RESNET_CHECK(out.dtype() == DType::f32 && out.shape() == sample_shape_.shape(),
                 "DataLoader: expected the transform to return "
                     << sample_shape_.str() << " f32 images, got " << out.shape_str()
                     << " for example " << index << " of " << dataset_->name());
    std::memcpy(dst, out.f32(), static_cast<size_t>(sample) * sizeof(float));
  }
  return batch;
}

void DataLoader::start_epoch(int64_t epoch, int64_t start_batch) {
  RESNET_CHECK(epoch >= 0, "DataLoader: expected an epoch >= 0, got " << epoch);
  RESNET_CHECK(start_batch >= 0 && start_batch <= batches_per_epoch(),
               "DataLoader: expected a start batch in [0, " << batches_per_epoch() << "], got "
                                                            << start_batch);
  stop_producer();
  started_ = true;
  epoch_ = epoch;
  next_batch_ = start_batch;
  error_ = nullptr;
  order_ = epoch_order(epoch);
  if (options_.prefetch == 0) return;
  queue_.clear();
  producer_error_ = nullptr;
  producer_done_ = false;
  stop_.store(false);
  producer_ =
      std::thread(&DataLoader::produce, this, order_, epoch, start_batch, batches_per_epoch());
}

void DataLoader::produce(std::vector<int64_t> order, int64_t epoch, int64_t first, int64_t end) {
  try {
    for (int64_t b = first; b < end; ++b) {
      std::optional<Batch> batch = build(order, epoch, b, &stop_);
      std::unique_lock<std::mutex> lock(mutex_);
      // A bounded queue: the producer stays at most `prefetch` batches ahead.
      not_full_.wait(lock, [&] {
        return stop_.load() || static_cast<int64_t>(queue_.size()) < options_.prefetch;
      });
      if (stop_.load() || !batch) break;
      queue_.push_back(std::move(*batch));
      not_empty_.notify_one();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    producer_error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  producer_done_ = true;
  not_empty_.notify_one();
}

void DataLoader::stop_producer() {
  if (!producer_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  not_full_.notify_all();
  producer_.join();
  queue_.clear();
}

std::optional<Batch> DataLoader::next() {
  RESNET_CHECK(started_, "DataLoader: expected start_epoch() before next(), got no epoch");
  if (error_) std::rethrow_exception(error_);
  if (options_.prefetch == 0) {
    if (next_batch_ >= batches_per_epoch()) return std::nullopt;
    try {
      std::optional<Batch> batch = build(order_, epoch_, next_batch_, nullptr);
      ++next_batch_;
      return batch;
    } catch (...) {
      error_ = std::current_exception();  // sticky, as on the background path
      throw;
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  not_empty_.wait(lock, [&] { return !queue_.empty() || producer_done_; });
  if (queue_.empty()) {
    if (producer_error_) {
      error_ = producer_error_;
      lock.unlock();
      std::rethrow_exception(error_);
    }
    return std::nullopt;
  }
  Batch batch = std::move(queue_.front());
  queue_.pop_front();
  ++next_batch_;
  not_full_.notify_one();
  return batch;
}

}  // namespace resnet::data
