#pragma once
// The Open Inference Protocol (KServe v2) in JSON: reading and checking an infer request,
// and writing responses, model metadata and errors. Nothing here touches the network.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "resnet/tensor/tensor.h"
#include "serve/served_model.h"

namespace resnet::serve {

// A request the server refuses: `status` is the HTTP status, what() the message that
// goes out as {"error": "..."}.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

struct InferRequest {
  std::string id;  // echoed in the response when the request gave one
  Tensor images;   // [n, C, H, W], plain f32
};

// Reads `body` as an infer request for `model`: exactly one input named as the model's,
// datatype FP32, shape [n, C, H, W] with 1 <= n <= max_batch and [C, H, W] the model's
// image shape, and data holding exactly as many numbers (flat, or nested row-major).
// The shape is checked against the model and the data's length before the tensor is
// allocated, so a request cannot make the server allocate more than its own body holds.
// With `json_length` (the Inference-Header-Content-Length header of the binary tensor
// extension), only that many leading bytes are JSON and the input's data follows them as
// raw little-endian FP32, its size in the input's parameters.binary_data_size: no text
// to parse for large images. Throws HttpError(400) naming what was expected and what was
// found.
InferRequest parse_infer_request(std::string_view body, const ServedModel& model, int64_t max_batch,
                                 std::optional<size_t> json_length = std::nullopt);

// {"model_name", "model_version", "id"?, "outputs": [{"name", "datatype", "shape", "data"}]}
// with each float written in its shortest form that reads back to the same float.
std::string infer_response(const ServedModel& model, const std::string& id, const Tensor& outputs);

// GET /v2/models/{name}: name, versions, platform, inputs and outputs (name, datatype,
// shape with -1 for the batch), and parameters (dtype, max_batch, classify).
std::string model_metadata(const ServedModel& model, int64_t max_batch);

// POST /v2/models/{name}/classify: {"model_name", "preprocess", "top": [{"class",
// "index", "probability"}]} for one image's output row.
std::string classify_response(const ServedModel& model, const float* outputs, int64_t top_k);

// {"error": message}
std::string error_body(const std::string& message);

}  // namespace resnet::serve
