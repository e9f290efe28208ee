#include "serve/metrics.h"

#include <cstdio>

namespace resnet::serve {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Model names are restricted to [A-Za-z0-9_.-] (served_model.cpp) and endpoints are
// ours, so label values need no escaping.
std::string label(const std::string& key, const std::string& value) {
  return key + "=\"" + value + "\"";
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

Metrics::Metrics(const std::vector<std::string>& models, int64_t max_batch) {
  // Request latency from 1 ms to 10 s; inference per batch likewise.
  latency_bounds_ = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  for (int64_t b = 1; b < max_batch; b *= 2) batch_bounds_.push_back(static_cast<double>(b));
  batch_bounds_.push_back(static_cast<double>(max_batch));
  for (const std::string& m : models) {
    latency_.emplace(m, Histogram(latency_bounds_));
    batch_size_.emplace(m, Histogram(batch_bounds_));
    inference_.emplace(m, Histogram(latency_bounds_));
    queue_depth_[m] = 0;
    batches_[m] = 0;
    weight_packs_[m] = 0;
  }
}

void Metrics::count_request(const std::string& model, const std::string& endpoint, int status,
                            double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{model, endpoint, status}];
  auto it = latency_.find(model);
  if (it == latency_.end()) it = latency_.emplace(model, Histogram(latency_bounds_)).first;
  it->second.observe(seconds);
}

void Metrics::observe_batch(const std::string& model, int64_t images, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_size_.at(model).observe(static_cast<double>(images));
  inference_.at(model).observe(seconds);
  ++batches_.at(model);
}

void Metrics::set_queue_depth(const std::string& model, int64_t requests) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_depth_.at(model) = requests;
}

void Metrics::set_weight_packs(const std::string& model, int64_t packs) {
  std::lock_guard<std::mutex> lock(mutex_);
  weight_packs_.at(model) = packs;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  header(out, "resnet_serve_requests_total", "counter",
         "Requests answered, by model, endpoint and HTTP status.");
  for (const auto& [key, n] : requests_) {
    const auto& [model, endpoint, status] = key;
    out += "resnet_serve_requests_total{" + label("model", model) + "," +
           label("endpoint", endpoint) + "," + label("code", std::to_string(status)) + "} " +
           std::to_string(n) + "\n";
  }
  header(out, "resnet_serve_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer, by model.");
  for (const auto& [model, h] : latency_)
    h.render(out, "resnet_serve_request_duration_seconds", label("model", model));
  header(out, "resnet_serve_batch_size", "histogram", "Images per batch the engine ran.");
  for (const auto& [model, h] : batch_size_)
    h.render(out, "resnet_serve_batch_size", label("model", model));
  header(out, "resnet_serve_inference_duration_seconds", "histogram",
         "Engine time per batch, by model.");
  for (const auto& [model, h] : inference_)
    h.render(out, "resnet_serve_inference_duration_seconds", label("model", model));
  header(out, "resnet_serve_queue_depth", "gauge", "Requests waiting for a batch, by model.");
  for (const auto& [model, n] : queue_depth_)
    out += "resnet_serve_queue_depth{" + label("model", model) + "} " + std::to_string(n) + "\n";
  header(out, "resnet_serve_batches_total", "counter", "Batches the engine ran, by model.");
  for (const auto& [model, n] : batches_)
    out += "resnet_serve_batches_total{" + label("model", model) + "} " + std::to_string(n) + "\n";
  header(out, "resnet_serve_weight_packs", "gauge",
         "Convolution weight packings by the engine, by model (constant once every batch "
         "size in use is compiled).");
  for (const auto& [model, n] : weight_packs_)
    out += "resnet_serve_weight_packs{" + label("model", model) + "} " + std::to_string(n) + "\n";
  return out;
}

}  // namespace resnet::serve
