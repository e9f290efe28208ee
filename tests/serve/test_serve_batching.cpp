// Dynamic batching under concurrency: requests from many clients run together, and each
// response holds exactly its own request's outputs, equal to running the request alone,
// in f32, bf16 and int8.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <regex>

#include "resnet/backend/activation_ops.h"
#include "serve/serve_process.h"

namespace resnet::testing {
namespace {

struct Sent {
  Tensor images;
  std::string body;  // the response
  int status = 0;
};

// 12 clients at once, 3 requests each of 1 to 3 images (distinct data), against model
// `name`; every answer compared with `engine` run on that request alone.
void expect_batched_answers_equal_alone(const ServeProcess& server, const std::string& name,
                                        const Shape& image, infer::CompiledModel& engine,
                                        double tolerance) {
  constexpr int kClients = 12, kRequests = 3;
  std::vector<Sent> sent(kClients * kRequests);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client = server.client();
      for (int i = 0; i < kRequests; ++i) {
        Sent& s = sent[static_cast<size_t>(c * kRequests + i)];
        s.images = test_images(1 + (c + i) % 3, image, static_cast<uint64_t>(1000 + c * 10 + i));
        auto r = client.Post(("/v2/models/" + name + "/infer").c_str(), infer_body(s.images),
                             "application/json");
        s.status = r ? r->status : -1;
        if (r) s.body = r->body;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  for (const Sent& s : sent) {
    ASSERT_EQ(s.status, 200) << s.body;
    const Tensor got = response_tensor(s.body);
    const Tensor want = engine.run(s.images);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LE(relative_diff(got, want), tolerance) << name;
  }
}

// A model's weight packings so far, from /metrics.
int64_t weight_packs(const ServeProcess& server, const std::string& name) {
  const std::string text = server.client().Get("/metrics")->body;
  std::smatch m;
  if (std::regex_search(text, m,
                        std::regex("resnet_serve_weight_packs\\{model=\"" + name + "\"\\} (\\d+)")))
    return std::stoll(m[1]);
  return -1;
}

// The batches a model ran and the requests it answered, from /metrics.
std::pair<int64_t, int64_t> batches_and_requests(const ServeProcess& server,
                                                 const std::string& name) {
  const std::string text = server.client().Get("/metrics")->body;
  std::smatch m;
  int64_t batches = -1, requests = -1;
  if (std::regex_search(
          text, m, std::regex("resnet_serve_batches_total\\{model=\"" + name + "\"\\} (\\d+)")))
    batches = std::stoll(m[1]);
  if (std::regex_search(text, m,
                        std::regex("resnet_serve_requests_total\\{model=\"" + name +
                                   "\",endpoint=\"infer\",code=\"200\"\\} (\\d+)")))
    requests = std::stoll(m[1]);
  return {batches, requests};
}

class ServeBatching : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { files_ = new ModelFiles(make_model_files("batching")); }
  static void TearDownTestSuite() {
    fs::remove_all(files_->dir);
    delete files_;
  }
  static ModelFiles* files_;
};
ModelFiles* ServeBatching::files_ = nullptr;

TEST_F(ServeBatching, F32AndInt8ResponsesEqualRunningEachRequestAlone) {
  // A long delay makes the clients' requests meet in batches.
  ServeProcess server("--model " + files_->f32 + " --model q=" + files_->int8 +
                      " --max-batch 8 --max-delay-ms 20");
  ASSERT_TRUE(server.started()) << server.log();
  const int64_t packs_at_start = weight_packs(server, "small");
  EXPECT_GT(packs_at_start, 0);
  infer::CompiledModel f32 = Model::load(files_->f32).compile(Precision::f32);
  expect_batched_answers_equal_alone(server, "small", files_->image, f32, 1e-5);
  EXPECT_EQ(weight_packs(server, "small"), packs_at_start)
      << "plans for every batch size are made at start-up, never per request";
  infer::CompiledModel int8 = Model::load(files_->int8).compile(Precision::int8);
  expect_batched_answers_equal_alone(server, "q", files_->image, int8, 1e-5);
  for (const char* name : {"small", "q"}) {
    const auto [batches, requests] = batches_and_requests(server, name);
    EXPECT_EQ(requests, 36) << name;
    EXPECT_GT(batches, 0) << name;
    EXPECT_LT(batches, requests) << name << ": expected requests to share batches";
  }
}

TEST_F(ServeBatching, Bf16ResponsesEqualRunningEachRequestAlone) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): --dtype bf16 would serve f32";
  ServeProcess server("--model " + files_->f32 + " --dtype bf16 --max-batch 8 --max-delay-ms 20");
  ASSERT_TRUE(server.started()) << server.log();
  infer::CompiledModel bf16 = Model::load(files_->f32).compile(Precision::bf16);
  expect_batched_answers_equal_alone(server, "small", files_->image, bf16, 1e-5);
  const auto [batches, requests] = batches_and_requests(server, "small");
  EXPECT_LT(batches, requests);
}

}  // namespace
}  // namespace resnet::testing
