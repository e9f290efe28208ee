// The data-parallel parts that need no MPI: the loader's shards, the gradient reducer's
// buckets and overlap (over a recording communicator), SyncBatchNorm's reducer, and the
// backward observer.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "data/data_test_util.h"
#include "resnet/backend/batchnorm2d.h"
#include "resnet/data/loader.h"
#include "resnet/dist/communicator.h"
#include "resnet/dist/gradient_reducer.h"
#include "resnet/dist/replicas.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/batchnorm2d.h"
#include "support/deterministic_weights.h"

namespace resnet::dist {
namespace {

// The shards of every batch, put together in rank order, are the one-process batch.
TEST(DataParallelShards, ShardsOfABatchAreTheBatch) {
  auto dataset = testing::synthetic_dataset(103, {1, 6, 6});
  data::LoaderOptions whole;
  whole.batch_size = 20;
  whole.seed = 7;
  whole.prefetch = 0;
  whole.transform = std::make_shared<data::RandomHorizontalFlip>();
  data::DataLoader one(dataset, whole);
  for (int64_t ranks : {2, 3, 4}) {
    std::vector<std::unique_ptr<data::DataLoader>> shards;
    for (int64_t r = 0; r < ranks; ++r) {
      data::LoaderOptions o = whole;
      o.shard_rank = r;
      o.shard_count = ranks;
      o.prefetch = r % 2 == 0 ? 0 : 2;  // with and without worker threads
      shards.push_back(std::make_unique<data::DataLoader>(dataset, o));
    }
    ASSERT_EQ(shards[0]->batches_per_epoch(), one.batches_per_epoch());
    for (int64_t b = 0; b < one.batches_per_epoch(); ++b) {
      const data::Batch full = one.make_batch(1, b);
      std::vector<int64_t> indices;
      std::vector<float> pixels;
      for (auto& shard : shards) {
        const data::Batch part = shard->make_batch(1, b);
        EXPECT_EQ(part.global_size, full.size());
        const int64_t r = &shard - &shards[0];
        EXPECT_EQ(part.size(), full.size() * (r + 1) / ranks - full.size() * r / ranks);
        indices.insert(indices.end(), part.indices.begin(), part.indices.end());
        pixels.insert(pixels.end(), part.images.f32(), part.images.f32() + part.images.numel());
      }
      EXPECT_EQ(indices, full.indices) << ranks << " ranks, batch " << b;
      ASSERT_EQ(static_cast<int64_t>(pixels.size()), full.images.numel());
      EXPECT_EQ(std::memcmp(pixels.data(), full.images.f32(), pixels.size() * sizeof(float)), 0);
    }
  }
}

TEST(DataParallelShards, RefusesABadShard) {
  auto dataset = testing::synthetic_dataset(10, {1, 4, 4});
  data::LoaderOptions o;
  o.shard_rank = 2;
  o.shard_count = 2;
  EXPECT_THROW(data::DataLoader(dataset, o), Error);
}

// A communicator for one process that acts as `ranks` identical replicas: a sum over
// the ranks multiplies by their number. It records when reductions start.
class Replicas : public Communicator {
 public:
  explicit Replicas(int ranks) : ranks_(ranks) {}
  int rank() const override { return 0; }
  int size() const override { return ranks_; }
  std::string describe() const override { return "replicas"; }
  void broadcast(std::span<std::byte>, int, const char*) override {}
  void allreduce_sum(std::span<double> data, const char*) override {
    for (double& v : data) v *= ranks_;
  }
  void allreduce_sum(std::span<int64_t> data, const char*) override {
    for (int64_t& v : data) v *= ranks_;
  }
  std::vector<uint64_t> allgather(uint64_t value, const char*) override {
    return std::vector<uint64_t>(static_cast<size_t>(ranks_), value);
  }
  RequestId start_allreduce_sum(std::span<float> data, const char*) override {
    for (float& v : data) v *= static_cast<float>(ranks_);
    bool untouched = probe != nullptr;
    if (probe)
      for (int64_t i = 0; i < probe->grad.numel(); ++i) untouched &= probe->grad.f32()[i] == 0.f;
    started.push_back({data.size(), untouched});
    return static_cast<RequestId>(started.size());
  }
  bool test(RequestId) override { return true; }
  void wait(RequestId) override {}
  [[noreturn]] void abort(const std::string& line) override { RESNET_FAIL(line); }

  struct Start {
    size_t floats;
    bool probe_untouched;  // the probe's gradient was still zero: backward not done
  };
  std::vector<Start> started;
  const nn::Parameter* probe = nullptr;

 private:
  int ranks_;
};

TEST(GradientReducer, SumsEveryGradientInBucketsStartedDuringBackward) {
  nn::ModulePtr model = models::build("resnet20", {});
  testing::fill_deterministic(*model, 3);
  model->train();
  Tensor x = testing::deterministic_tensor(4, "x", {4, 3, 16, 16});
  Tensor dy = testing::deterministic_tensor(5, "dy", {4, 10});

  // Plain backward: the reference gradients.
  model->forward(x);
  model->zero_grad();
  model->backward(dy);
  std::vector<std::vector<float>> reference;
  for (auto& [name, p] : model->named_parameters())
    reference.emplace_back(p->grad.f32(), p->grad.f32() + p->grad.numel());

  Replicas comm(3);
  GradientReducer reducer(*model, comm, 64 * 1024);  // 64 KB buckets
  EXPECT_GT(reducer.bucket_count(), 3);
  EXPECT_EQ(reducer.parameter_count(), static_cast<int64_t>(reference.size()));
  // Reverse registration order: fc first.
  EXPECT_EQ(reducer.bucket_names().front().front(), "fc.bias");
  EXPECT_EQ(reducer.bucket_names().back().back(), "conv1.weight");
  comm.probe = model->named_parameters().front().second;  // conv1.weight: backward's last
  model->forward(x);
  model->zero_grad();
  reducer.backward(dy);
  ASSERT_EQ(static_cast<int64_t>(comm.started.size()), reducer.bucket_count());
  // Every bucket but the last (conv1's) starts before backward reaches conv1.
  for (size_t k = 0; k + 1 < comm.started.size(); ++k)
    EXPECT_TRUE(comm.started[k].probe_untouched) << "bucket " << k;
  EXPECT_FALSE(comm.started.back().probe_untouched);
  size_t i = 0;
  for (auto& [name, p] : model->named_parameters()) {
    for (int64_t k = 0; k < p->grad.numel(); ++k)
      ASSERT_EQ(p->grad.f32()[k], 3.0f * reference[i][static_cast<size_t>(k)]) << name;
    ++i;
  }
}

// SyncBatchNorm over 2 identical replicas normalizes as one BN over both batches: a
// reducer that doubles the sums is the other rank holding the same batch.
TEST(SyncBatchNorm, DoubledSumsMatchTheBatchTwice) {
  const int64_t c = 5;
  Tensor x = testing::deterministic_tensor(1, "x", {3, c, 4, 4});
  Tensor dy = testing::deterministic_tensor(2, "dy", {3, c, 4, 4});
  Tensor weight = testing::deterministic_tensor(3, "w", {c});
  Tensor bias = testing::deterministic_tensor(4, "b", {c});
  // The batch twice, one process.
  Tensor x2({6, c, 4, 4}), dy2({6, c, 4, 4});
  for (int k = 0; k < 2; ++k) {
    std::memcpy(x2.f32() + k * x.numel(), x.f32(), x.nbytes());
    std::memcpy(dy2.f32() + k * dy.numel(), dy.f32(), dy.nbytes());
  }
  backend::BatchNorm2dKernel alone(1e-5), synced(1e-5);
  synced.set_cross_replica_sum([](std::span<double> s) {
    for (double& v : s) v *= 2;
  });
  Tensor m2({c}), v2({c}), m({c}), v({c});
  Tensor y2 = alone.forward_train(x2, weight, bias, m2, v2);
  Tensor y = synced.forward_train(x, weight, bias, m, v);
  EXPECT_EQ(synced.last_train_count(), 2.0 * 3 * 16);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_NEAR(y.f32()[i], y2.f32()[i], 1e-5);
  Tensor gw2({c}), gb2({c}), gw({c}), gb({c});
  Tensor dx2 = alone.backward(dy2, x2, weight, m2, v2, false, gw2, gb2);
  Tensor dx = synced.backward(dy, x, weight, m, v, false, gw, gb);
  for (int64_t i = 0; i < dx.numel(); ++i) ASSERT_NEAR(dx.f32()[i], dx2.f32()[i], 1e-5);
  // Parameter gradients stay this rank's: half of the two-batch ones.
  for (int64_t i = 0; i < c; ++i) {
    EXPECT_NEAR(2 * gw.f32()[i], gw2.f32()[i], 1e-4);
    EXPECT_NEAR(2 * gb.f32()[i], gb2.f32()[i], 1e-4);
  }
}

TEST(Replicas, ChecksumsAndAgreement) {
  nn::ModulePtr a = models::build("resnet20", {});
  nn::ModulePtr b = models::build("resnet20", {});
  testing::fill_deterministic(*a, 1);
  testing::fill_deterministic(*b, 1);
  EXPECT_EQ(module_checksum(*a), module_checksum(*b));
  b->named_parameters().front().second->value.f32()[0] += 1e-6f;
  EXPECT_NE(module_checksum(*a), module_checksum(*b));
  Replicas comm(2);
  EXPECT_NO_THROW(check_ranks_agree(comm, 42, "weights", "hint"));
  auto single = single_process();
  EXPECT_EQ(from_root(*single, "config", [] { return std::string("text"); }), "text");
  EXPECT_THROW(from_root(*single, "config", []() -> std::string { RESNET_FAIL("no file"); }),
               Error);
}

}  // namespace
}  // namespace resnet::dist
