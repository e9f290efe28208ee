// resnet serve: an inference server on the Open Inference Protocol (KServe v2), with
// dynamic batching, metrics and a graceful shutdown (src/serve/).

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <thread>

#include "command.h"
#include "model_loading.h"
#include "resnet/core/error.h"
#include "serve/server.h"

namespace resnet::cli {

namespace {

// How long the connections' threads may take to end after the server stopped accepting
// (an idle keep-alive connection notices within its 5 s timeout; a client still
// trickling a body in could hold on longer, and does not get to hold the exit).
constexpr auto kCloseGrace = std::chrono::seconds(10);

void run_serve(const serve::ServeOptions& options) {
  // SIGTERM and SIGINT are taken by sigwait on this thread, never by a handler: every
  // thread started from here on (HTTP, batch workers, OpenMP) inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serve::Server server(options);
  const int port = server.bind();
  std::cout << "resnet serve: listening on http://" << options.host << ":" << port << std::endl;
  std::promise<void> stopped;
  std::future<void> done = stopped.get_future();
  std::thread listener([&] {
    server.listen();
    stopped.set_value();
    // listen() ends by itself only on a failure: wake the main thread.
    if (!server.state().draining) kill(getpid(), SIGTERM);
  });
  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "resnet serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
            << ": not ready, finishing the requests in flight" << std::endl;
  server.drain_and_stop();
  if (done.wait_for(kCloseGrace) == std::future_status::timeout) {
    std::cout << "resnet serve: connections still open after " << kCloseGrace.count()
              << " s; exiting" << std::endl;
    std::_Exit(0);
  }
  listener.join();
  std::cout << "resnet serve: stopped" << std::endl;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "Inference server: Open Inference Protocol (KServe v2) over HTTP, dynamic batching");
  auto o = std::make_shared<serve::ServeOptions>();
  cmd->add_option("--model", o->models,
                  "[NAME=]MODEL: a checkpoint (f32 or quantized), an ONNX file or a zoo name "
                  "(random weights); NAME defaults to the file's stem; repeat to serve several")
      ->required();
  cmd->add_option(
         "--dtype", o->dtype,
         "Precision: f32, bf16 or int8 (default: int8 for a quantized checkpoint, else f32)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_option("--preprocess", o->preprocess,
                  "/classify's preprocessing, as resnet predict's: imagenet, checkpoint or none "
                  "(default: the recipe the model file records, else imagenet)")
      ->check(CLI::IsMember({"imagenet", "checkpoint", "none"}));
  cmd->add_option("--size", o->size,
                  "Input height and width of models whose file fixes none (default: what "
                  "/classify's preprocessing gives, else 224)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--host", o->host, "Address to listen on (default 127.0.0.1: loopback only)");
  cmd->add_option("--port", o->port, "Port (default 8000; 0: any free port, printed)");
  cmd->add_option("--max-batch", o->max_batch,
                  "Most images per batch and per request (default 16)");
  cmd->add_option("--max-delay-ms", o->max_delay_ms,
                  "Longest wait for a batch to fill after its first request (default 2)");
  cmd->add_option("--max-queue", o->max_queue,
                  "Most requests waiting per model; more get 503 (default 256)");
  cmd->add_option("--timeout-ms", o->timeout_ms,
                  "Longest time a request waits for its answer; then 504 (default 10000)");
  cmd->add_option("--max-body-mb", o->max_body_mb,
                  "Largest request body in MiB; more get 413 "
                  "(default 16)");
  cmd->add_option("--threads", o->threads, "Compute threads (default: one per core)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--connections", o->connections,
                  "HTTP threads: connections served at once; more wait (default 64)");
  cmd->add_flag("--log-requests", o->log_requests, "One JSON line per request on stderr");
  add_model_options(cmd, o->model_options);
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace resnet::cli
