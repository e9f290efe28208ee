#include "serve/routes.h"

#include <httplib.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <regex>
#include <span>

#include <nlohmann/json.hpp>

#include "resnet/api/version.h"
#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/preprocess.h"
#include "serve/kserve.h"

namespace resnet::serve {

namespace {

using httplib::Request;
using httplib::Response;

// An upload's declared size above this is refused before decoding: a small file can
// declare a huge image, and the decoder allocates the declared pixels.
constexpr int64_t kMaxUploadPixels = 4096 * 4096;

// When the request on this thread began (set before its body is read): httplib runs a
// request's routing, handler and logger on one thread.
thread_local Clock::time_point request_start{};
// Whether the current request was counted (and logged) before its response was written.
thread_local bool request_counted = false;

const char* kRoutes =
    "GET /v2, /v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready, "
    "/metrics; POST /v2/models/NAME/infer, /v2/models/NAME/classify";

void send(Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void send_error(Response& res, int status, const std::string& message) {
  send(res, status, error_body(message));
  // 503 means "try again": the queue was full, or the server is stopping.
  if (status == 503) res.set_header("Retry-After", "1");
}

// Turns what a handler throws into the status and {"error": ...} it stands for.
template <typename F>
httplib::Server::Handler guarded(F f) {
  return [f](const Request& req, Response& res) {
    try {
      f(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, std::string("internal error: ") + e.what());
    }
  };
}

ModelEntry& find_model(ServerState& s, const Request& req) {
  const std::string name = req.matches[1];
  auto it = s.models.find(name);
  if (it == s.models.end()) {
    std::string names;
    for (const auto& [n, e] : s.models) names += (names.empty() ? "" : ", ") + n;
    throw HttpError(404, "model '" + name + "': expected one of the served models (" + names +
                             "), got an unknown name");
  }
  return it->second;
}

// Counts a model request in flight for the shutdown to wait on, or refuses it once the
// shutdown began. The count is raised before the flag is read (both sequentially
// consistent), so the shutdown either sees the request or the request sees the flag.
class InFlight {
 public:
  explicit InFlight(ServerState& s) : s_(s) {
    ++s_.in_flight;
    if (s_.draining) {
      --s_.in_flight;
      throw HttpError(503, "the server is shutting down: expected no new requests, got one");
    }
  }
  ~InFlight() { --s_.in_flight; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  ServerState& s_;
};

// Queues `images` on the model's batcher and waits for its rows of the output, at most
// --timeout-ms from now.
Tensor infer(ServerState& s, ModelEntry& e, Tensor images) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(s.options.timeout_ms);
  Batcher::Submission sub = e.batcher->submit(std::move(images), deadline);
  if (sub.admission == Batcher::Admission::queue_full)
    throw HttpError(503, "model " + e.model.name + ": expected room in its queue (--max-queue " +
                             std::to_string(s.options.max_queue) +
                             " waiting requests), got a full queue; retry later");
  if (sub.admission == Batcher::Admission::stopped)
    throw HttpError(503, "the server is shutting down: expected no new requests, got one");
  const std::string late = "model " + e.model.name + ": expected an answer within --timeout-ms " +
                           std::to_string(s.options.timeout_ms) + ", got none in time";
  if (sub.result.wait_until(deadline) == std::future_status::timeout) throw HttpError(504, late);
  try {
    return sub.result.get();
  } catch (const DeadlineExpired&) {
    throw HttpError(504, late);
  }
}

// The binary tensor extension's header: how many leading bytes of the body are JSON.
std::optional<size_t> json_length(const Request& req) {
  const char* header = "Inference-Header-Content-Length";
  if (!req.has_header(header)) return std::nullopt;
  const std::string v = req.get_header_value(header);
  size_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size())
    throw HttpError(400, std::string(header) + ": expected a byte count, got '" + v + "'");
  return n;
}

void handle_infer(ServerState& s, const Request& req, Response& res) {
  InFlight guard(s);
  ModelEntry& e = find_model(s, req);
  InferRequest r = parse_infer_request(req.body, e.model, s.options.max_batch, json_length(req));
  const Tensor out = infer(s, e, std::move(r.images));
  send(res, 200, infer_response(e.model, r.id, out));
}

int64_t top_k_param(const Request& req) {
  if (!req.has_param("top_k")) return 5;
  const std::string v = req.get_param_value("top_k");
  int64_t k = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), k);
  if (ec != std::errc() || end != v.data() + v.size() || k < 1)
    throw HttpError(400, "top_k: expected a positive integer, got '" + v + "'");
  return k;
}

// The upload as the model's input, exactly as `resnet predict` would prepare the file.
Tensor classify_input(const ModelEntry& e, const std::string& body) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  Tensor image;
  try {
    const data::ImageInfo info = data::read_image_info(bytes, "request body");
    if (info.height * info.width > kMaxUploadPixels)
      throw HttpError(413, "request body: expected an image of at most " +
                               std::to_string(kMaxUploadPixels) + " pixels, got " +
                               std::to_string(info.width) + "x" + std::to_string(info.height));
    image = data::preprocess_image(bytes, "request body", *e.model.classify);
  } catch (const Error& err) {
    throw HttpError(400, err.what());
  }
  if (image.shape() != e.model.image_shape)
    throw HttpError(400, "request body: expected an image that preprocesses to " +
                             shape_str(e.model.image_shape) + " for model " + e.model.name +
                             ", got " + shape_str(image.shape()));
  return image.reshape({1, image.dim(0), image.dim(1), image.dim(2)});
}

void handle_classify(ServerState& s, const Request& req, Response& res) {
  InFlight guard(s);
  ModelEntry& e = find_model(s, req);
  if (!e.model.classify)
    throw HttpError(400, "model " + e.model.name +
                             ": expected a model with an image preprocessing for /classify, got "
                             "none: " +
                             e.model.classify_refusal + "; use /infer");
  const int64_t k = top_k_param(req);
  const Tensor out = infer(s, e, classify_input(e, req.body));
  send(res, 200, classify_response(e.model, out.f32(), k));
}

void install_model_routes(httplib::Server& http, ServerState& s) {
  http.Get(R"(/v2/models/([^/]+))", guarded([&s](const Request& req, Response& res) {
             const ModelEntry& e = find_model(s, req);
             send(res, 200, model_metadata(e.model, s.options.max_batch));
           }));
  http.Get(R"(/v2/models/([^/]+)/ready)", guarded([&s](const Request& req, Response& res) {
             const ModelEntry& e = find_model(s, req);
             const bool ready = !s.draining;
             send(res, ready ? 200 : 503,
                  nlohmann::json{{"name", e.model.name}, {"ready", ready}}.dump());
           }));
  http.Post(R"(/v2/models/([^/]+)/infer)",
            guarded([&s](const Request& req, Response& res) { handle_infer(s, req, res); }));
  http.Post(R"(/v2/models/([^/]+)/classify)",
            guarded([&s](const Request& req, Response& res) { handle_classify(s, req, res); }));
}

// Fills the body of the errors httplib answers by itself (no route, a body over the
// limit, a malformed request); our own errors already have one.
void fill_error(const ServerState& s, const Request& req, Response& res) {
  if (!res.body.empty()) return;
  std::string message;
  if (res.status == 404) {
    message = "no route " + req.method + " " + req.path + ": expected one of " + kRoutes;
  } else if (res.status == 413 && req.get_header_value("Content-Type")
                                      .starts_with("application/x-www-form-urlencoded")) {
    // httplib parses such bodies as forms, and refuses them over its own 8 KiB limit.
    message =
        "request body: expected Content-Type application/json (or the image's type for "
        "/classify), got application/x-www-form-urlencoded, which is limited to 8192 bytes";
  } else if (res.status == 413) {
    message = "request body: expected at most " +
              std::to_string(static_cast<int64_t>(s.options.max_body_mb * 1024 * 1024)) +
              " bytes (--max-body-mb), got " +
              (req.has_header("Content-Length") ? req.get_header_value("Content-Length")
                                                : std::string("more"));
  } else {
    message = "expected a well-formed HTTP request, got one answered with status " +
              std::to_string(res.status);
  }
  send_error(res, res.status, message);
}

void log_request(const ServerState& s, const Request& req, const Response& res, double seconds) {
  const auto [model, endpoint] = route_labels(req.path, s);
  s.metrics->count_request(model, endpoint, res.status, seconds);
  if (!s.options.log_requests) return;
  const nlohmann::json line = {{"time", static_cast<int64_t>(std::time(nullptr))},
                               {"remote", req.remote_addr},
                               {"method", req.method},
                               {"path", req.path},
                               {"model", model},
                               {"status", res.status},
                               {"ms", std::round(seconds * 1e6) / 1e3},
                               {"bytes_in", req.body.size()},
                               {"bytes_out", res.body.size()}};
  // One fprintf per line: stdio locks the stream, so lines from threads do not mix.
  std::fprintf(stderr, "%s\n",
               line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

std::pair<std::string, std::string> route_labels(const std::string& path,
                                                 const ServerState& state) {
  static const std::regex model_path(R"(/v2/models/([^/]+)(/(ready|infer|classify))?)");
  std::smatch m;
  if (std::regex_match(path, m, model_path)) {
    const std::string model = state.models.count(m[1].str()) ? m[1].str() : "";
    return {model, m[3].matched ? m[3].str() : "metadata"};
  }
  if (path == "/v2/health/live") return {"", "live"};
  if (path == "/v2/health/ready") return {"", "ready"};
  if (path == "/v2") return {"", "server"};
  if (path == "/metrics") return {"", "metrics"};
  return {"", "other"};
}

void install_routes(httplib::Server& http, ServerState& s) {
  http.set_pre_routing_handler([](const Request&, Response&) {
    request_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.Get("/v2/health/live",
           [](const Request&, Response& res) { send(res, 200, R"({"live":true})"); });
  http.Get("/v2/health/ready", [&s](const Request&, Response& res) {
    const bool ready = !s.draining;
    send(res, ready ? 200 : 503, nlohmann::json{{"ready", ready}}.dump());
  });
  http.Get("/v2", [](const Request&, Response& res) {
    send(res, 200,
         nlohmann::json{{"name", "resnet"}, {"version", version()}, {"extensions", {"classify"}}}
             .dump());
  });
  http.Get("/metrics", [&s](const Request&, Response& res) {
    res.set_content(s.metrics->render(), "text/plain; version=0.0.4");
  });
  install_model_routes(http, s);
  http.set_error_handler([&s](const Request& req, Response& res) { fill_error(s, req, res); });
  http.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error while answering the request");
  });
  // A request is counted before its response is written (post-routing), so that a client
  // that has its answer finds it in /metrics; httplib's logger, which runs after the
  // write, counts only what post-routing did not see.
  auto count = [&s](const Request& req, const Response& res) {
    // Requests refused before routing (a body over the limit) have no start time.
    const bool timed = request_start != Clock::time_point{};
    const double seconds =
        timed ? std::chrono::duration<double>(Clock::now() - request_start).count() : 0.0;
    log_request(s, req, res, seconds);
  };
  http.set_post_routing_handler([count](const Request& req, Response& res) {
    count(req, res);
    request_counted = true;
  });
  http.set_logger([count](const Request& req, const Response& res) {
    if (!request_counted) count(req, res);
    request_counted = false;
    request_start = Clock::time_point{};
  });
}

}  // namespace resnet::serve
