#include "serve/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <thread>

#include "resnet/api/runtime.h"
#include "resnet/core/error.h"
#include "serve/routes.h"

namespace resnet::serve {

namespace {

void check_options(const ServeOptions& o) {
  RESNET_CHECK(!o.models.empty(), "--model: expected at least one [NAME=]MODEL, got none");
  RESNET_CHECK(o.max_batch >= 1, "--max-batch: expected at least 1, got " << o.max_batch);
  RESNET_CHECK(o.max_delay_ms >= 0, "--max-delay-ms: expected at least 0, got " << o.max_delay_ms);
  RESNET_CHECK(o.max_queue >= 1, "--max-queue: expected at least 1, got " << o.max_queue);
  RESNET_CHECK(o.timeout_ms >= 1, "--timeout-ms: expected at least 1, got " << o.timeout_ms);
  RESNET_CHECK(o.max_body_mb > 0, "--max-body-mb: expected more than 0, got " << o.max_body_mb);
  RESNET_CHECK(o.connections >= 1, "--connections: expected at least 1, got " << o.connections);
  RESNET_CHECK(o.port >= 0 && o.port <= 65535,
               "--port: expected 0 (any free port) to 65535, got " << o.port);
}

std::string describe(const ServedModel& m) {
  std::string s = "model " + m.name + " (" + m.source + "): " + m.dtype + ", input " +
                  m.input_name + " " +
                  shape_str(Shape{-1, m.image_shape[0], m.image_shape[1], m.image_shape[2]});
  Shape out = m.output_shape;
  out.insert(out.begin(), -1);
  s += ", output " + m.output_name + " " + shape_str(out) + ", classify: ";
  s += m.classify ? m.classify->name : "no (" + m.classify_refusal + ")";
  if (!m.fallback_note.empty()) s += "; " + m.fallback_note;
  if (m.random_weights) s += "; random weights (a zoo name: for load tests)";
  return s;
}

}  // namespace

Server::Server(const ServeOptions& options) : state_(std::make_unique<ServerState>()) {
  check_options(options);
  state_->options = options;
  if (options.threads > 0) set_num_threads(options.threads);
  std::vector<std::string> names;
  for (const std::string& arg : options.models) {
    const std::string name = split_model_arg(arg).first;
    for (const std::string& n : names)
      RESNET_CHECK(n != name, "--model " << arg << ": expected a name not yet served, got '" << name
                                         << "' twice; name one with NAME=MODEL");
    names.push_back(name);
  }
  state_->metrics = std::make_unique<Metrics>(names, options.max_batch);
  BatcherOptions b;
  b.max_batch = options.max_batch;
  b.max_delay = std::chrono::microseconds(static_cast<int64_t>(options.max_delay_ms * 1000));
  b.max_queue = options.max_queue;
  for (const std::string& arg : options.models) {
    std::unique_ptr<infer::CompiledModel> engine;
    ServedModel m = load_served_model(arg, options, engine);
    std::cout << "resnet serve: " << describe(m) << std::endl;
    auto batcher =
        std::make_unique<Batcher>(m.name, std::move(engine), m.image_shape, b, *state_->metrics);
    const std::string name = m.name;
    state_->models.emplace(name, ModelEntry{std::move(m), std::move(batcher)});
  }
  http_ = std::make_unique<httplib::Server>();
  const int connections = options.connections;
  http_->new_task_queue = [connections] { return new httplib::ThreadPool(connections); };
  http_->set_payload_max_length(static_cast<size_t>(options.max_body_mb * 1024 * 1024));
  http_->set_keep_alive_max_count(100000);
  // Answers are written in pieces (headers, body); with Nagle's algorithm the last piece
  // waits for the client's delayed ACK, 40 ms on Linux, per request.
  http_->set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second server bind the same
  // port and silently take half its connections; a port in use must be an error.
  http_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  install_routes(*http_, *state_);
}

Server::~Server() = default;

int Server::bind() {
  const ServeOptions& o = state_->options;
  errno = 0;
  const int port = o.port == 0 ? http_->bind_to_any_port(o.host)
                               : (http_->bind_to_port(o.host, o.port) ? o.port : -1);
  RESNET_CHECK(port > 0, "--host " << o.host << " --port " << o.port
                                   << ": expected to listen there, got "
                                   << (errno ? std::strerror(errno) : "a failure to bind"));
  return port;
}

void Server::listen() {
  http_->listen_after_bind();
}

void Server::drain_and_stop() {
  state_->draining = true;
  const Clock::time_point give_up =
      Clock::now() + std::chrono::milliseconds(state_->options.timeout_ms + 1000);
  while (state_->in_flight > 0 && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& [name, e] : state_->models) e.batcher->stop();
  http_->stop();
}

}  // namespace resnet::serve
