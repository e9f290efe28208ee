#pragma once
// The server's counters and histograms, rendered in Prometheus' text format (0.0.4) for
// GET /metrics. One mutex guards everything: an update is a few additions, far cheaper
// than the request it records, and a scrape sees one consistent snapshot.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace resnet::serve {

// A cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds = {});
  void observe(double value);
  // Appends NAME_bucket{labels,le="..."}, NAME_sum{labels} and NAME_count{labels}.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  // `models` are the served names; `max_batch` bounds the batch-size histogram.
  Metrics(const std::vector<std::string>& models, int64_t max_batch);

  // One answered request: `model` is empty for routes that name none (and for unknown
  // model names, which would otherwise let clients grow the label set without bound).
  void count_request(const std::string& model, const std::string& endpoint, int status,
                     double seconds);
  // One batch run by a model's worker: its images and the time the engine took.
  void observe_batch(const std::string& model, int64_t images, double seconds);
  void set_queue_depth(const std::string& model, int64_t requests);
  // How many times the model's engine has packed convolution weights: once per layer and
  // batch size compiled, so it stays put after start-up unless plans are rebuilt.
  void set_weight_packs(const std::string& model, int64_t packs);

  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by model ("" included)
  std::map<std::string, Histogram> batch_size_;
  std::map<std::string, Histogram> inference_;
  std::map<std::string, int64_t> queue_depth_;
  std::map<std::string, uint64_t> batches_;
  std::map<std::string, int64_t> weight_packs_;
  std::vector<double> latency_bounds_, batch_bounds_;
};

}  // namespace resnet::serve
