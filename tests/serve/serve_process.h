#pragma once
// What the server's tests share: small model files made on the spot, the `resnet serve`
// process on a free port, KServe request bodies and their answers as tensors.

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "resnet/api/model.h"
#include "resnet/io/checkpoint.h"
#include "resnet/models/zoo.h"
#include "resnet/train/checkpoint_info.h"
#include "support/deterministic_weights.h"

namespace resnet::testing {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// [n, C, H, W] values in [-1, 1), different for every seed.
inline Tensor test_images(int64_t n, const Shape& image, uint64_t seed) {
  Shape shape = image;
  shape.insert(shape.begin(), n);
  Tensor t(shape);
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    t.f32()[i] = static_cast<float>(z >> 40) / 8388608.0f - 1.0f;
  }
  return t;
}

// A checkpoint of resnet20 on 3x16x16 images with 10 named classes (what `resnet train`
// writes, with deterministic weights), and its int8 version calibrated on test images
// (what `resnet quantize` writes): the files a user would serve.
struct ModelFiles {
  fs::path dir;
  std::string f32, int8;
  Shape image{3, 16, 16};
};

inline ModelFiles make_model_files(const std::string& tag) {
  ModelFiles f;
  f.dir = fs::temp_directory_path() / ("resnet_serve_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(f.dir);
  fs::create_directories(f.dir);
  train::CheckpointInfo info;
  info.model = "resnet20";
  info.options.num_classes = 10;
  info.options.in_channels = 3;
  info.input_height = info.input_width = 16;
  info.mean = {0.5f, 0.4f, 0.3f};
  info.std = {0.25f, 0.2f, 0.3f};
  for (int i = 0; i < 10; ++i) info.class_names.push_back("class" + std::to_string(i));
  info.dataset = "generated";
  info.epoch = 1;
  nn::ModulePtr model = models::build(info.model, info.options);
  fill_deterministic(*model, 7);
  f.f32 = (f.dir / "small.safetensors").string();
  io::save_state_dict(*model, f.f32, info.to_metadata());
  Model q = Model::load(f.f32);
  q.calibrate({test_images(8, f.image, 100), test_images(8, f.image, 101)});
  f.int8 = (f.dir / "small_int8.safetensors").string();
  q.save(f.int8);
  return f;
}

// `resnet serve ARGS --port 0`, started and waited for until it listens.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& args) {
    static int counter = 0;
    const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(counter++);
    out_ = fs::temp_directory_path() / ("resnet_serve_out_" + tag);
    err_ = fs::temp_directory_path() / ("resnet_serve_err_" + tag);
    const std::string cmd = "exec " + std::string(RESNET_BINARY) + " serve " + args +
                            " --port 0 >" + out_.string() + " 2>" + err_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    const std::regex listening(R"(listening on http://[^:]+:(\d+))");
    while (std::chrono::steady_clock::now() < give_up && port_ == 0) {
      std::smatch m;
      const std::string out = slurp(out_);
      if (std::regex_search(out, m, listening)) port_ = std::stoi(m[1]);
      int status = 0;
      if (port_ == 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // httplib's client is a compiled library whose function-local statics (its regexes)
    // are made on first use behind a guard that ThreadSanitizer cannot see in
    // uninstrumented code; made here, on the thread that starts the test's client
    // threads, they are made before any of them runs.
    if (port_ > 0) {
      client().Get("/v2/health/live");
      client().Post("/v2/models/none/infer", "{}", "application/json");
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    // Under scripts/tsan.sh the server is instrumented: its reports go to its stderr.
    const std::string err = slurp(err_);
    if (err.find("ThreadSanitizer") != std::string::npos) ADD_FAILURE() << err;
    fs::remove(out_);
    fs::remove(err_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  bool started() const { return port_ > 0; }
  std::string log() const { return slurp(out_) + slurp(err_); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

  // Sends `sig` and waits (at most `seconds`) for the exit status; -1 if it did not exit.
  int signal_and_wait(int sig, int seconds) {
    ::kill(pid_, sig);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  fs::path out_, err_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A response kept by value (httplib::Result is move-only and has no empty state); status
// -1: no response.
struct Answer {
  int status = -1;
  std::string body;
  std::string retry_after;
};

inline Answer post_json(const ServeProcess& server, const std::string& path,
                        const std::string& body) {
  Answer a;
  if (auto r = server.client().Post(path.c_str(), body, "application/json")) {
    a.status = r->status;
    a.body = r->body;
    a.retry_after = r->get_header_value("Retry-After");
  }
  return a;
}

// The value of the series `series` (its name and labels, exactly as /metrics writes them),
// or -1 when /metrics has no such line.
inline double metric(const ServeProcess& server, const std::string& series) {
  auto r = server.client().Get("/metrics");
  if (!r) return -1;
  std::istringstream lines(r->body);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

// A KServe v2 infer request for `images` ([n, C, H, W]).
inline std::string infer_body(const Tensor& images, const std::string& id = "") {
  nlohmann::json input = {{"name", "input"}, {"datatype", "FP32"}, {"shape", images.shape()}};
  input["data"] = std::vector<float>(images.f32(), images.f32() + images.numel());
  nlohmann::json body = {{"inputs", {input}}};
  if (!id.empty()) body["id"] = id;
  return body.dump();
}

// The output tensor of an infer response.
inline Tensor response_tensor(const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body);
  const nlohmann::json& out = j.at("outputs").at(0);
  return Tensor::from_vector(out.at("shape").get<Shape>(),
                             out.at("data").get<std::vector<float>>());
}

inline double relative_diff(const Tensor& a, const Tensor& b) {
  return static_cast<double>(max_abs_diff(a, b)) / std::max(static_cast<double>(max_abs(b)), 1e-30);
}

}  // namespace resnet::testing
