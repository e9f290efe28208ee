#pragma once
// The inference server: the served models with their batchers, the HTTP server and its
// routes, and the shutdown that lets requests in flight finish.

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "serve/batcher.h"
#include "serve/metrics.h"
#include "serve/options.h"
#include "serve/served_model.h"

namespace httplib {
class Server;
}

namespace resnet::serve {

struct ModelEntry {
  ServedModel model;
  std::unique_ptr<Batcher> batcher;
};

// What the routes share. Models are fixed after start-up, so the map is read without a
// lock; everything that changes is atomic or behind its own lock (Metrics, Batcher).
struct ServerState {
  ServeOptions options;
  // Before the models: their batchers' workers record into it until they are joined.
  std::unique_ptr<Metrics> metrics;
  std::map<std::string, ModelEntry> models;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};  // model requests inside a handler
};

class Server {
 public:
  // Loads and compiles every model and warms its plans; prints one line per model.
  explicit Server(const ServeOptions& options);
  ~Server();

  // Binds --host and --port (0: any free port) and returns the port.
  int bind();
  // Serves until stop(); returns once every connection's thread has ended.
  void listen();
  // Readiness turns false and new model requests get 503; waits for the requests in
  // flight (at most --timeout-ms and a second more), runs what is queued, then stops
  // accepting. Callable from any thread.
  void drain_and_stop();

  const ServerState& state() const { return *state_; }

 private:
  std::unique_ptr<ServerState> state_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace resnet::serve
