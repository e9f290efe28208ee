#include "resnet/data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "resnet/core/error.h"
#include "resnet/data/rng.h"

namespace resnet::data {

// --- BadImageLog ---

void BadImageLog::record(const Dataset& dataset, int64_t index, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  bad_.insert({&dataset, index});
  messages_.emplace(dataset.example_name(index), message);
}

bool BadImageLog::known_bad(const Dataset& dataset, int64_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bad_.count({&dataset, index}) != 0;
}

int64_t BadImageLog::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(messages_.size());
}

std::vector<std::string> BadImageLog::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, message] : messages_) {
    // Messages usually begin with the file's name already.
    out.push_back(message.rfind(name, 0) == 0 ? message : name + ": " + message);
  }
  return out;
}

// --- DataLoader ---

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  RESNET_CHECK(dataset_ != nullptr, "DataLoader: expected a dataset, got null");
  RESNET_CHECK(options_.batch_size > 0,
               "DataLoader: expected batch_size > 0, got " << options_.batch_size);
  RESNET_CHECK(options_.prefetch >= 0,
               "DataLoader: expected prefetch >= 0, got " << options_.prefetch);
  RESNET_CHECK(options_.workers >= 0,
               "DataLoader: expected workers >= 0, got " << options_.workers);
  RESNET_CHECK(options_.shard_count > 0 && options_.shard_rank >= 0 &&
                   options_.shard_rank < options_.shard_count,
               "DataLoader: expected shard 0 <= rank < count, got rank "
                   << options_.shard_rank << " of " << options_.shard_count);
  RESNET_CHECK(batches_per_epoch() > 0,
               "DataLoader: expected at least one batch per epoch, got "
                   << dataset_->size() << " examples in " << dataset_->name() << " with batch size "
                   << options_.batch_size << (options_.drop_last ? " and drop_last" : ""));
  const ImageShape in = dataset_->image_shape();
  RESNET_CHECK(options_.sample_transform || !dataset_->variable_size(),
               "DataLoader: expected a per-sample transform (a crop to one size) for "
                   << dataset_->name() << ", whose images differ in size, got none");
  sample_shape_ =
      options_.sample_transform ? options_.sample_transform->output_shape(in.channels) : in;
  if (options_.transform) sample_shape_ = options_.transform->output_shape(sample_shape_);
}

DataLoader::~DataLoader() {
  stop_workers();
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
  return build(epoch_order(epoch), epoch, batch_index);
}

Batch DataLoader::allocate(const std::vector<int64_t>& order, int64_t epoch,
                           int64_t batch_index) const {
  const int64_t global_first = batch_index * options_.batch_size;
  const int64_t global_n = std::min(options_.batch_size, dataset_->size() - global_first);
  const int64_t r = options_.shard_rank, shards = options_.shard_count;
  const int64_t first = global_first + global_n * r / shards;
  const int64_t n = global_first + global_n * (r + 1) / shards - first;
  Batch batch;
  batch.epoch = epoch;
  batch.index = batch_index;
  batch.global_size = global_n;
  batch.images = Tensor({n, sample_shape_.channels, sample_shape_.height, sample_shape_.width});
  batch.labels = Tensor({n}, DType::i64);
  batch.indices.assign(order.begin() + first, order.begin() + first + n);
  for (int64_t k = 0; k < n; ++k) {
    batch.labels.i64()[k] = dataset_->label(batch.indices[static_cast<size_t>(k)]);
  }
  return batch;
}

void DataLoader::make_sample(int64_t epoch, int64_t index, float* dst) const {
  const int64_t sample = sample_shape_.numel();
  if (!options_.sample_transform && !options_.transform) {
    dataset_->read_image(index, dst);
    return;
  }
  Rng rng = Rng::derive(options_.seed, static_cast<uint64_t>(epoch), Rng::kSampleStream,
                        static_cast<uint64_t>(index));
  Tensor image;
  if (options_.sample_transform) {
    image = options_.sample_transform->apply(*dataset_, index, rng);
  } else {
    image = Tensor(dataset_->image_shape().shape());
    dataset_->read_image(index, image.f32());
  }
  if (options_.transform) image = options_.transform->apply(image, rng);
  RESNET_CHECK(image.dtype() == DType::f32 && image.shape() == sample_shape_.shape(),
               "DataLoader: expected the transforms to return "
                   << sample_shape_.str() << " f32 images, got " << image.shape_str()
                   << " for example " << index << " of " << dataset_->name());
  std::memcpy(dst, image.f32(), static_cast<size_t>(sample) * sizeof(float));
}

void DataLoader::fill(Batch& batch, int64_t position) const {
  float* dst = batch.images.f32() + position * sample_shape_.numel();
  const int64_t wanted = batch.indices[static_cast<size_t>(position)];
  if (!options_.bad_images) {
    make_sample(batch.epoch, wanted, dst);
    return;
  }
  const int64_t n = dataset_->size();
  for (int64_t step = 0; step < n; ++step) {
    const int64_t index = (wanted + step) % n;
    if (options_.bad_images->known_bad(*dataset_, index)) continue;
    try {
      make_sample(batch.epoch, index, dst);
    } catch (const Error& e) {
      options_.bad_images->record(*dataset_, index, e.what());
      continue;
    }
    if (index != wanted) {
      batch.indices[static_cast<size_t>(position)] = index;
      batch.labels.i64()[position] = dataset_->label(index);
    }
    return;
  }
  RESNET_FAIL(dataset_->name() << ": expected at least one readable image, got "
                               << options_.bad_images->count() << " unreadable ones");
}

Batch DataLoader::build(const std::vector<int64_t>& order, int64_t epoch,
                        int64_t batch_index) const {
  Batch batch = allocate(order, epoch, batch_index);
  for (int64_t k = 0; k < batch.size(); ++k) fill(batch, k);
  return batch;
}

void DataLoader::start_epoch(int64_t epoch, int64_t start_batch) {
  RESNET_CHECK(epoch >= 0, "DataLoader: expected an epoch >= 0, got " << epoch);
  RESNET_CHECK(start_batch >= 0 && start_batch <= batches_per_epoch(),
               "DataLoader: expected a start batch in [0, " << batches_per_epoch() << "], got "
                                                            << start_batch);
  stop_workers();
  started_ = true;
  epoch_ = epoch;
  next_batch_ = start_batch;
  error_ = nullptr;
  order_ = epoch_order(epoch);
  if (!background()) return;
  slots_.clear();
  claim_batch_ = start_batch;
  claim_position_ = 0;
  end_batch_ = batches_per_epoch();
  // A few samples per claim keep the lock out of the way of small images; several claims
  // per batch and worker keep every worker busy until the batch is done.
  chunk_ = std::clamp<int64_t>(options_.batch_size / (4 * options_.workers), 1, 32);
  stop_ = false;
  for (int64_t w = 0; w < options_.workers; ++w) workers_.emplace_back(&DataLoader::work, this);
}

void DataLoader::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    may_claim_.wait(lock, [&] {
      return stop_ || claim_batch_ >= end_batch_ || claim_batch_ < next_batch_ + options_.prefetch;
    });
    if (stop_ || claim_batch_ >= end_batch_) return;
    const int64_t b = claim_batch_, first = claim_position_;
    auto [it, fresh] = slots_.try_emplace(b);
    Slot& slot = it->second;  // map nodes stay put while other slots come and go
    if (fresh) {
      try {
        slot.batch = allocate(order_, epoch_, b);
      } catch (...) {
        slot.error = std::current_exception();
        slot.error_position = 0;
        ++claim_batch_;
        claim_position_ = 0;
        ready_.notify_all();
        continue;
      }
      slot.pending = slot.batch.size();
    }
    const int64_t end = std::min(first + chunk_, slot.batch.size());
    if (end == slot.batch.size()) {
      ++claim_batch_;
      claim_position_ = 0;
    } else {
      claim_position_ = end;
    }
    lock.unlock();
    std::exception_ptr error;
    int64_t error_position = 0;
    for (int64_t k = first; k < end && !error; ++k) {
      try {
        fill(slot.batch, k);
      } catch (...) {
        error = std::current_exception();
        error_position = k;
      }
    }
    lock.lock();
    if (error && (!slot.error || error_position < slot.error_position)) {
      slot.error = error;
      slot.error_position = error_position;
    }
    slot.pending -= end - first;
    if (slot.pending == 0 || slot.error) ready_.notify_all();
  }
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  may_claim_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  slots_.clear();
}

std::optional<Batch> DataLoader::next() {
  RESNET_CHECK(started_, "DataLoader: expected start_epoch() before next(), got no epoch");
  if (error_) std::rethrow_exception(error_);
  if (next_batch_ >= batches_per_epoch()) return std::nullopt;
  if (!background()) {
    try {
      Batch batch = build(order_, epoch_, next_batch_);
      ++next_batch_;
      return batch;
    } catch (...) {
      error_ = std::current_exception();  // sticky, as on the background path
      throw;
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  Slot* slot = nullptr;
  ready_.wait(lock, [&] {
    auto it = slots_.find(next_batch_);
    if (it == slots_.end()) return false;
    slot = &it->second;
    // A failed batch too is reported only once all its samples are back, so that no worker
    // still writes into it.
    return slot->pending == 0;
  });
  if (slot->error) {
    error_ = slot->error;
    lock.unlock();
    std::rethrow_exception(error_);
  }
  Batch batch = std::move(slot->batch);
  slots_.erase(next_batch_);
  ++next_batch_;
  may_claim_.notify_all();
  return batch;
}

}  // namespace resnet::data
