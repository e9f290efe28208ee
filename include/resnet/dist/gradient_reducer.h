#pragma once
// GradientReducer: sums every trainable parameter's gradient over the ranks during the
// backward pass, as PyTorch DDP and Horovod do.
//
// Buckets: the trainable parameters, in reverse registration order (roughly the order
// backward finishes them: fc first, conv1 last), are cut into buckets of at least
// `bucket_bytes` of gradients (the last one smaller). Every rank builds the same buckets
// from the same network, and starts their reductions strictly in bucket order, so the
// collectives match across ranks whatever the timing.
//
// Overlap: a BackwardObserver marks a module's parameters, and those of every module below
// it, final when its backward returns. A bucket whose gradients are all final is copied
// into its flat buffer and its non-blocking sum started (Communicator::start_allreduce_sum)
// while the backward pass goes on with earlier layers; every later module's return also
// drives the reductions in flight on (test()), since an MPI library without a progress
// thread advances them only inside its calls. After the pass, the reducer waits for what
// is left and writes the sums back into the gradients.
//
// The caller scales the loss so that the sum over the ranks is the gradient it wants (the
// trainer: each rank's share of the global batch).

#include <cstdint>
#include <map>
#include <vector>

#include "resnet/dist/communicator.h"
#include "resnet/nn/module.h"

namespace resnet::dist {

// Where a step's reduction time went, in seconds.
struct ReduceTiming {
  double backward = 0.0;  // the backward pass itself, reductions started inside it included
  double reduce = 0.0;    // from the first bucket's start to the last one's completion
  double exposed = 0.0;   // waited for after the backward pass: the part not hidden
};

class GradientReducer {
 public:
  GradientReducer(nn::Module& model, Communicator& comm, int64_t bucket_bytes);

  // model.backward(grad_output) with the gradients summed over the ranks.
  void backward(const Tensor& grad_output);

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t parameter_count() const { return static_cast<int64_t>(params_.size()); }
  // Parameters (names) of each bucket, in reduction order.
  std::vector<std::vector<std::string>> bucket_names() const;
  const ReduceTiming& last() const { return last_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<float> flat;
    size_t ready = 0;
    RequestId request = 0;
    bool started = false, done = false;
  };
  void on_module_done(nn::Module& module);
  void mark_ready(size_t param);
  void start_ready_buckets();
  void poll_started();
  void start(Bucket& bucket);
  void finish(Bucket& bucket);

  nn::Module& model_;
  Communicator& comm_;
  std::vector<std::pair<std::string, nn::Parameter*>> params_;  // reduction order
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::map<const nn::Module*, std::vector<size_t>> subtree_params_;
  std::vector<bool> ready_;
  size_t next_start_ = 0;
  double first_start_ = 0.0, last_done_ = 0.0;
  ReduceTiming last_;
};

}  // namespace resnet::dist
