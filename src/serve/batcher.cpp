#include "serve/batcher.h"

#include <algorithm>
#include <cstring>

#include "resnet/core/error.h"

namespace resnet::serve {

namespace {

// Rows [begin, begin + rows) of a plain tensor, copied.
Tensor copy_rows(const Tensor& t, int64_t begin, int64_t rows) {
  Shape shape = t.shape();
  const int64_t row = t.numel() / shape[0];
  shape[0] = rows;
  Tensor out = Tensor::empty(shape);
  std::memcpy(out.f32(), t.f32() + begin * row, static_cast<size_t>(rows * row) * sizeof(float));
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::vector<int64_t> chunk_sizes(int64_t n, int64_t max_batch) {
  std::vector<int64_t> sizes;
  while (n > 0) {
    int64_t s = n >= max_batch ? max_batch : 1;
    while (s * 2 <= n && s * 2 <= max_batch && s < max_batch) s *= 2;
    sizes.push_back(s);
    n -= s;
  }
  return sizes;
}

Batcher::Batcher(std::string model, std::unique_ptr<infer::CompiledModel> engine,
                 const Shape& image_shape, BatcherOptions options, Metrics& metrics)
    : model_(std::move(model)), engine_(std::move(engine)), options_(options), metrics_(metrics) {
  // Every size chunk_sizes can produce: the powers of two below max_batch, and max_batch.
  for (int64_t s = 1;; s = std::min(s * 2, options_.max_batch)) {
    Shape shape = image_shape;
    shape.insert(shape.begin(), s);
    engine_->run(Tensor(shape));
    if (s == options_.max_batch) break;
  }
  metrics_.set_weight_packs(model_, engine_->memory_stats().weight_packs);
  worker_ = std::thread([this] { work(); });
}

Batcher::~Batcher() {
  stop();
}

Batcher::Submission Batcher::submit(Tensor images, Clock::time_point deadline) {
  Submission s;
  auto job = std::make_unique<Job>();
  job->images = std::move(images);
  job->arrived = Clock::now();
  job->deadline = deadline;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return s;
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue) {
      s.admission = Admission::queue_full;
      return s;
    }
    s.result = job->promise.get_future();
    queued_images_ += job->images.dim(0);
    queue_.push_back(std::move(job));
    metrics_.set_queue_depth(model_, static_cast<int64_t>(queue_.size()));
  }
  wake_.notify_one();
  s.admission = Admission::accepted;
  return s;
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
}

void Batcher::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::vector<std::unique_ptr<Job>> jobs = take_batch(lock);
    lock.unlock();
    if (!jobs.empty()) run_batch(jobs);
    lock.lock();
  }
}

// Waits until max_batch images are queued or the oldest job has waited max_delay since it
// arrived (no waiting once stopping: the queue is drained as fast as it runs), then takes
// jobs from the front while they fit in max_batch images. Jobs past their deadline are
// answered DeadlineExpired instead. Only this thread pops, so the front stays put while
// the lock is released in the wait.
std::vector<std::unique_ptr<Batcher::Job>> Batcher::take_batch(std::unique_lock<std::mutex>& lock) {
  const Clock::time_point until = queue_.front()->arrived + options_.max_delay;
  wake_.wait_until(lock, until, [&] { return stopping_ || queued_images_ >= options_.max_batch; });
  std::vector<std::unique_ptr<Job>> jobs;
  int64_t images = 0;
  const Clock::time_point now = Clock::now();
  while (!queue_.empty()) {
    std::unique_ptr<Job>& front = queue_.front();
    const int64_t n = front->images.dim(0);
    if (front->deadline <= now) {
      front->promise.set_exception(std::make_exception_ptr(
          DeadlineExpired("the request waited in the queue past --timeout-ms")));
    } else if (images + n > options_.max_batch) {
      break;
    } else {
      images += n;
      jobs.push_back(std::move(front));
    }
    queued_images_ -= n;
    queue_.pop_front();
  }
  metrics_.set_queue_depth(model_, static_cast<int64_t>(queue_.size()));
  return jobs;
}

void Batcher::run_batch(std::vector<std::unique_ptr<Job>>& jobs) {
  int64_t total = 0;
  for (const auto& job : jobs) total += job->images.dim(0);
  Shape shape = jobs.front()->images.shape();
  shape[0] = total;
  // One job alone is run as it came; several are gathered into one tensor.
  Tensor batch = jobs.size() == 1 ? jobs.front()->images : Tensor::empty(shape);
  if (jobs.size() > 1) {
    float* dst = batch.f32();
    for (const auto& job : jobs) {
      std::memcpy(dst, job->images.f32(), job->images.nbytes());
      dst += job->images.numel();
    }
  }
  const Clock::time_point start = Clock::now();
  // Every job's rows are cut before any promise is kept, so that a failure answers every
  // job once.
  std::vector<Tensor> outputs;
  try {
    const Tensor out = run_chunks(batch);
    metrics_.observe_batch(model_, total, seconds_since(start));
    metrics_.set_weight_packs(model_, engine_->memory_stats().weight_packs);
    int64_t row = 0;
    for (auto& job : jobs) {
      const int64_t n = job->images.dim(0);
      outputs.push_back(jobs.size() == 1 ? out : copy_rows(out, row, n));
      row += n;
    }
  } catch (...) {
    for (auto& job : jobs) job->promise.set_exception(std::current_exception());
    return;
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i]->promise.set_value(std::move(outputs[i]));
}

Tensor Batcher::run_chunks(const Tensor& batch) {
  const int64_t total = batch.dim(0);
  const std::vector<int64_t> sizes = chunk_sizes(total, options_.max_batch);
  if (sizes.size() == 1) return engine_->run(batch);
  Tensor out;
  int64_t begin = 0;
  for (int64_t s : sizes) {
    const Tensor part = engine_->run(copy_rows(batch, begin, s));
    if (!out.defined()) {
      Shape shape = part.shape();
      shape[0] = total;
      out = Tensor::empty(shape);
    }
    const int64_t row = part.numel() / s;
    std::memcpy(out.f32() + begin * row, part.f32(), part.nbytes());
    begin += s;
  }
  return out;
}

}  // namespace resnet::serve
