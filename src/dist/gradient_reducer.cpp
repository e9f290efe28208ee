#include "resnet/dist/gradient_reducer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace resnet::dist {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

GradientReducer::GradientReducer(nn::Module& model, Communicator& comm, int64_t bucket_bytes)
    : model_(model), comm_(comm) {
  RESNET_CHECK(bucket_bytes > 0, "GradientReducer: expected a positive bucket size, got "
                                     << bucket_bytes << " bytes");
  std::vector<std::pair<std::string, nn::Parameter*>> all = model.named_parameters();
  std::reverse(all.begin(), all.end());
  std::map<const nn::Parameter*, size_t> index;
  for (auto& [name, p] : all) {
    if (!p->requires_grad) continue;
    RESNET_CHECK(p->value.dtype() == DType::f32 && p->value.layout() == Layout::plain,
                 "GradientReducer: expected plain f32 parameters, got " << name);
    index[p] = params_.size();
    params_.emplace_back(name, p);
  }
  size_t bytes = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (buckets_.empty() || bytes >= static_cast<size_t>(bucket_bytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(i);
    bucket_of_.push_back(buckets_.size() - 1);
    bytes += static_cast<size_t>(params_[i].second->value.numel()) * sizeof(float);
  }
  for (Bucket& b : buckets_) {
    size_t n = 0;
    for (size_t i : b.params) n += static_cast<size_t>(params_[i].second->value.numel());
    b.flat.resize(n);
  }
  auto subtree = [&](nn::Module& m) {
    std::vector<size_t> ids;
    for (auto& [name, p] : m.named_parameters())
      if (auto it = index.find(p); it != index.end()) ids.push_back(it->second);
    return ids;
  };
  subtree_params_[&model] = subtree(model);
  for (auto& [name, m] : model.named_modules()) subtree_params_[m] = subtree(*m);
}

std::vector<std::vector<std::string>> GradientReducer::bucket_names() const {
  std::vector<std::vector<std::string>> names;
  for (const Bucket& b : buckets_) {
    names.emplace_back();
    for (size_t i : b.params) names.back().push_back(params_[i].first);
  }
  return names;
}

void GradientReducer::backward(const Tensor& grad_output) {
  ready_.assign(params_.size(), false);
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.started = b.done = false;
  }
  next_start_ = 0;
  first_start_ = last_done_ = 0.0;
  const double begin = now_seconds();
  {
    nn::BackwardObserverGuard guard([this](nn::Module& m) { on_module_done(m); });
    model_.backward(grad_output);
  }
  const double backward_end = now_seconds();
  // Whatever the observer did not see (a parameter outside every module's backward)
  // is final now too.
  for (size_t i = 0; i < params_.size(); ++i) mark_ready(i);
  start_ready_buckets();
  for (Bucket& b : buckets_) {
    if (!b.done) {
      comm_.wait(b.request);
      finish(b);
    }
  }
  const double end = now_seconds();
  last_.backward = backward_end - begin;
  last_.reduce = buckets_.empty() ? 0.0 : last_done_ - first_start_;
  last_.exposed = end - backward_end;
  for (Bucket& b : buckets_) {
    size_t offset = 0;
    for (size_t i : b.params) {
      Tensor& g = params_[i].second->grad;
      std::memcpy(g.f32(), b.flat.data() + offset, static_cast<size_t>(g.numel()) * sizeof(float));
      offset += static_cast<size_t>(g.numel());
    }
  }
}

void GradientReducer::on_module_done(nn::Module& module) {
  auto it = subtree_params_.find(&module);
  if (it != subtree_params_.end())
    for (size_t i : it->second) mark_ready(i);
  start_ready_buckets();
  poll_started();
}

void GradientReducer::mark_ready(size_t param) {
  if (ready_[param]) return;
  ready_[param] = true;
  ++buckets_[bucket_of_[param]].ready;
}

void GradientReducer::start_ready_buckets() {
  while (next_start_ < buckets_.size() &&
         buckets_[next_start_].ready == buckets_[next_start_].params.size()) {
    start(buckets_[next_start_++]);
  }
}

void GradientReducer::poll_started() {
  for (size_t k = 0; k < next_start_; ++k) {
    Bucket& b = buckets_[k];
    if (!b.done && comm_.test(b.request)) finish(b);
  }
}

void GradientReducer::start(Bucket& b) {
  size_t offset = 0;
  for (size_t i : b.params) {
    const Tensor& g = params_[i].second->grad;
    RESNET_CHECK(g.defined() && g.dtype() == DType::f32 && g.layout() == Layout::plain &&
                     g.numel() == params_[i].second->value.numel(),
                 "GradientReducer: expected a plain f32 gradient for " << params_[i].first);
    std::memcpy(b.flat.data() + offset, g.f32(), static_cast<size_t>(g.numel()) * sizeof(float));
    offset += static_cast<size_t>(g.numel());
  }
  if (first_start_ == 0.0) first_start_ = now_seconds();
  b.request = comm_.start_allreduce_sum(std::span(b.flat), "gradient allreduce");
  b.started = true;
}

void GradientReducer::finish(Bucket& b) {
  b.done = true;
  last_done_ = now_seconds();
}

}  // namespace resnet::dist
