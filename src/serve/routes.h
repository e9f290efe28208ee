#pragma once
// The HTTP routes of the Open Inference Protocol (KServe v2) and /metrics on an
// httplib::Server, over the shared ServerState.

#include <string>
#include <utility>

#include "serve/server.h"

namespace httplib {
class Server;
}

namespace resnet::serve {

// Registers every route, the error handler (JSON bodies for httplib's own 404 and 413),
// the exception handler, and the logger that counts (and with --log-requests logs) every
// answered request.
void install_routes(httplib::Server& http, ServerState& state);

// The metrics labels of a path: {model, endpoint}; the model is empty unless the path
// names a served one.
std::pair<std::string, std::string> route_labels(const std::string& path, const ServerState& state);

}  // namespace resnet::serve
