// `resnet serve` under abuse and at its limits: a flood of malformed requests mixed with
// good ones, a client trickling its body byte by byte, a full queue (503), a request
// past its deadline (504), and SIGTERM with requests in flight.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>

#include "serve/serve_process.h"

namespace resnet::testing {
namespace {

using nlohmann::json;

// Sends `request` on a new connection, `chunk` bytes at a time with `pause` between
// them, and returns what the server answered (until it closed the connection).
std::string raw_exchange(int port, const std::string& request, size_t chunk,
                         std::chrono::microseconds pause) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  for (size_t i = 0; i < request.size(); i += chunk) {
    if (::send(fd, request.data() + i, std::min(chunk, request.size() - i), MSG_NOSIGNAL) < 0)
      break;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return answer;
}

std::string http_post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

class ServeResilience : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { files_ = new ModelFiles(make_model_files("resilience")); }
  static void TearDownTestSuite() {
    fs::remove_all(files_->dir);
    delete files_;
  }
  static ModelFiles* files_;
};
ModelFiles* ServeResilience::files_ = nullptr;

// What a flood of bad requests sends: each is answered 4xx, none harms the server.
std::vector<std::string> malformed_bodies(const Tensor& good) {
  std::string random(5000, '\0');
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<char>((i * 7919 + 13) % 256);
  json lying = json::parse(infer_body(good));
  lying["inputs"][0]["shape"] = {1000000000, 3, 16, 16};
  json strings = json::parse(infer_body(good));
  strings["inputs"][0]["data"][5] = "five";
  json nested = json::parse(infer_body(good));
  nested["inputs"][0]["data"] = json::parse(std::string(200, '[') + std::string(200, ']'));
  const std::string body = infer_body(good);
  return {random,
          body.substr(0, body.size() / 2),
          std::string(100000, '['),
          "{\"inputs\":" + std::string(50000, '[') + "1" + std::string(50000, ']') + "}",
          lying.dump(),
          strings.dump(),
          nested.dump(),
          "{\"inputs\":[{\"name\":\"\xff\xfe\",\"datatype\":\"FP32\"}]}",
          "null",
          ""};
}

TEST_F(ServeResilience, MalformedFloodLeavesGoodRequestsAnsweredCorrectly) {
  ServeProcess server("--model " + files_->f32 + " --max-batch 8 --max-body-mb 1");
  ASSERT_TRUE(server.started()) << server.log();
  const Tensor good = test_images(2, files_->image, 77);
  const Tensor want = Model::load(files_->f32).compile().run(good);
  const std::vector<std::string> bad = malformed_bodies(good);
  std::atomic<int> good_ok{0}, good_wrong{0}, bad_4xx{0}, bad_other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c = server.client();
      for (int i = 0; i < 20; ++i) {
        const std::string& body = bad[static_cast<size_t>(t * 20 + i) % bad.size()];
        const char* path = i % 7 == 3 ? "/v2/models/nope/infer" : "/v2/models/small/infer";
        auto r = c.Post(path, body, "application/json");
        (r && r->status >= 400 && r->status < 500 ? bad_4xx : bad_other)++;
      }
      // Not HTTP at all, and a body over the limit.
      raw_exchange(server.port(), "GARBAGE\r\n\r\n", 1 << 20, std::chrono::microseconds(0));
      auto big = c.Post("/v2/models/small/infer", std::string(2 << 20, '1'), "application/json");
      (big && big->status == 413 ? bad_4xx : bad_other)++;
    });
  }
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      httplib::Client c = server.client();
      for (int i = 0; i < 10; ++i) {
        auto r = c.Post("/v2/models/small/infer", infer_body(good), "application/json");
        const bool right =
            r && r->status == 200 && relative_diff(response_tensor(r->body), want) <= 1e-5;
        (right ? good_ok : good_wrong)++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good_ok, 30);
  EXPECT_EQ(good_wrong, 0);
  EXPECT_EQ(bad_4xx, 6 * 21);
  EXPECT_EQ(bad_other, 0);
  auto live = server.client().Get("/v2/health/live");
  ASSERT_TRUE(live) << server.log();
  EXPECT_EQ(live->status, 200);
}

TEST_F(ServeResilience, SlowClientDoesNotBlockOthers) {
  ServeProcess server("--model " + files_->f32);
  ASSERT_TRUE(server.started()) << server.log();
  const Tensor x = test_images(1, files_->image, 3);
  const std::string request = http_post("/v2/models/small/infer", infer_body(x));
  std::atomic<bool> slow_done{false};
  std::string slow_answer;
  // About 8 KB one byte at a time, 200 us apart: two seconds or more.
  std::thread slow([&] {
    slow_answer = raw_exchange(server.port(), request, 1, std::chrono::microseconds(200));
    slow_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  httplib::Client c = server.client();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Post("/v2/models/small/infer", infer_body(x), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_FALSE(slow_done) << "the slow client finished first; the check proves nothing";
  slow.join();
  EXPECT_NE(slow_answer.find("HTTP/1.1 200"), std::string::npos) << slow_answer.substr(0, 300);
}

TEST_F(ServeResilience, FullQueueIs503WithRetryAfterAndLateIs504) {
  // One request waits up to 1.5 s for its batch to fill but may wait only 500 ms.
  ServeProcess server("--model " + files_->f32 +
                      " --max-queue 1 --max-delay-ms 1500 --timeout-ms 500 --threads 1");
  ASSERT_TRUE(server.started()) << server.log();
  const std::string body = infer_body(test_images(1, files_->image, 1));
  Answer first;
  std::thread waiting([&] { first = post_json(server, "/v2/models/small/infer", body); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Answer full = post_json(server, "/v2/models/small/infer", body);
  waiting.join();
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_EQ(full.retry_after, "1");
  EXPECT_NE(json::parse(full.body)["error"].get<std::string>().find("--max-queue 1"),
            std::string::npos);
  EXPECT_EQ(first.status, 504) << first.body;
  EXPECT_NE(json::parse(first.body)["error"].get<std::string>().find("--timeout-ms 500"),
            std::string::npos);
}

TEST_F(ServeResilience, SigtermFinishesRequestsInFlightThenExitsZero) {
  // Requests wait up to 2 s for their batch to fill: SIGTERM arrives while they are queued.
  ServeProcess server("--model " + files_->f32 + " --max-batch 16 --max-delay-ms 2000");
  ASSERT_TRUE(server.started()) << server.log();
  const Tensor x = test_images(1, files_->image, 9);
  const Tensor want = Model::load(files_->f32).compile().run(x);
  std::vector<Answer> in_flight(6);
  std::vector<std::thread> clients;
  for (auto& r : in_flight)
    clients.emplace_back([&] { r = post_json(server, "/v2/models/small/infer", infer_body(x)); });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric(server, R"(resnet_serve_queue_depth{model="small"})") < 6 &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::atomic<int> exit_code{-2};
  std::thread stopper([&] { exit_code = server.signal_and_wait(SIGTERM, 30); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto ready = server.client().Get("/v2/health/ready");
  const Answer late = post_json(server, "/v2/models/small/infer", infer_body(x));
  for (std::thread& t : clients) t.join();
  stopper.join();
  for (auto& r : in_flight) {
    ASSERT_EQ(r.status, 200) << "an in-flight request lost its answer: " << r.body;
    EXPECT_LE(relative_diff(response_tensor(r.body), want), 1e-5);
  }
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body)["ready"], false);
  EXPECT_EQ(late.status, 503) << late.body;
  EXPECT_EQ(exit_code, 0) << server.log();
  EXPECT_NE(server.log().find("SIGTERM"), std::string::npos);
}

TEST_F(ServeResilience, SigintStopsItToo) {
  ServeProcess server("--model " + files_->f32);
  ASSERT_TRUE(server.started()) << server.log();
  EXPECT_EQ(server.signal_and_wait(SIGINT, 30), 0) << server.log();
  EXPECT_NE(server.log().find("SIGINT"), std::string::npos) << server.log();
}

}  // namespace
}  // namespace resnet::testing
