#pragma once
// Dynamic batching for one model: requests queue up and run together, up to max_batch
// images or max_delay after the first of them arrived, on the model's one worker thread.
//
// One worker per model because a CompiledModel is used by one thread at a time (its
// plans hold state made on first use); the engine itself computes on all cores. A batch
// of n images runs as chunks whose sizes are powers of two up to max_batch (and
// max_batch itself): the engine keeps compiled plans and packed weights for every input
// shape it has seen, so bounding the sizes bounds that cache to about log2(max_batch) + 1
// plans instead of max_batch, and no plan is ever rebuilt per request.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "resnet/infer/compiled_model.h"
#include "resnet/tensor/tensor.h"
#include "serve/metrics.h"

namespace resnet::serve {

using Clock = std::chrono::steady_clock;

struct BatcherOptions {
  int64_t max_batch = 16;
  std::chrono::microseconds max_delay{2000};
  int64_t max_queue = 256;  // requests waiting, not yet in a batch
};

// What a job's future throws when its deadline passed before its batch started.
struct DeadlineExpired : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The chunk sizes a batch of n images runs as: largest first, each a power of two not
// above max_batch, or max_batch itself.
std::vector<int64_t> chunk_sizes(int64_t n, int64_t max_batch);

class Batcher {
 public:
  // Runs every chunk size once on zeros of `image_shape` ([C, H, W]) before the worker
  // starts, so that no request pays for compiling plans.
  Batcher(std::string model, std::unique_ptr<infer::CompiledModel> engine, const Shape& image_shape,
          BatcherOptions options, Metrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  enum class Admission { accepted, queue_full, stopped };
  struct Submission {
    Admission admission = Admission::stopped;
    std::future<Tensor> result;  // valid when accepted: the job's own rows of the output
  };
  // Queues `images` ([n, C, H, W], 1 <= n <= max_batch, the shape checked by the caller).
  // A job still queued at `deadline` is dropped (its future throws DeadlineExpired).
  Submission submit(Tensor images, Clock::time_point deadline);

  // Runs what is queued, then ends the worker. Later submissions are refused.
  void stop();

 private:
  struct Job {
    Tensor images;
    Clock::time_point arrived, deadline;
    std::promise<Tensor> promise;
  };
  void work();
  std::vector<std::unique_ptr<Job>> take_batch(std::unique_lock<std::mutex>& lock);
  void run_batch(std::vector<std::unique_ptr<Job>>& jobs);
  Tensor run_chunks(const Tensor& batch);

  const std::string model_;
  std::unique_ptr<infer::CompiledModel> engine_;  // used by the worker thread only
  const BatcherOptions options_;
  Metrics& metrics_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  int64_t queued_images_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace resnet::serve
