#include "serve/kserve.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "resnet/api/prediction.h"
#include "serve/request_json.h"

namespace resnet::serve {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) {
  throw HttpError(400, message);
}

std::string type_name(const json& j) {
  if (j.is_number()) return "a number";
  return std::string("a ") + j.type_name();
}

const json& field(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) bad(where + ": expected a \"" + key + "\" field, got none");
  return *it;
}

// A request's value as an error message quotes it: short, and never a dump of a large or
// nested value (the message is for a person, and a dump of nesting is recursive).
std::string brief(const json& j) {
  bool flat = j.is_primitive() || (j.is_array() && j.size() <= 8);
  if (j.is_array())
    for (const json& e : j) flat = flat && e.is_primitive() && !e.is_string();
  if (!flat)
    return type_name(j) + (j.is_array() ? " of " + std::to_string(j.size()) + " elements" : "");
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= 80 ? text : text.substr(0, 80) + "...";
}

std::string shape_text(const json& shape) {
  return brief(shape);
}

// Checks "shape" against [1..max_batch, C, H, W] and returns the image count.
int64_t check_shape(const json& shape, const ServedModel& model, int64_t max_batch,
                    const std::string& where) {
  const Shape& image = model.image_shape;
  const std::string want = "[N, " + std::to_string(image[0]) + ", " + std::to_string(image[1]) +
                           ", " + std::to_string(image[2]) +
                           "] with 1 <= N <= " + std::to_string(max_batch);
  if (!shape.is_array()) bad(where + ".shape: expected " + want + ", got " + type_name(shape));
  bool ok = shape.size() == 4;
  for (const json& d : shape) ok = ok && d.is_number_integer();
  if (!ok) bad(where + ".shape: expected " + want + ", got " + shape_text(shape));
  const int64_t n = shape[0].get<int64_t>();
  for (size_t i = 1; i < 4; ++i) ok = ok && shape[i].get<int64_t>() == image[i - 1];
  if (!ok || n < 1 || n > max_batch) {
    const std::string why = n > max_batch ? " (more images than --max-batch)" : "";
    bad(where + ".shape: expected " + want + ", got " + shape_text(shape) + why);
  }
  return n;
}

// One float in its shortest round-trip form; JSON has no NaN or infinity, so null.
void append_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

json shape_json(int64_t batch, const Shape& rest) {
  json s = json::array({batch});
  for (int64_t d : rest) s.push_back(d);
  return s;
}

}  // namespace

namespace {

// The request's one input after checking its name, datatype and shape; `n` receives the
// image count.
const json& checked_input(const json& request, const ServedModel& model, int64_t max_batch,
                          int64_t& n) {
  const json& inputs = field(request, "inputs", "request");
  if (!inputs.is_array() || inputs.size() != 1)
    bad("inputs: expected an array of one input (\"" + model.input_name + "\"), got " +
        (inputs.is_array() ? std::to_string(inputs.size()) + " inputs" : type_name(inputs)));
  const json& input = inputs[0];
  if (!input.is_object()) bad("inputs[0]: expected an object, got " + type_name(input));
  const json& name = field(input, "name", "inputs[0]");
  if (!name.is_string() || name.get<std::string>() != model.input_name)
    bad("inputs[0].name: expected \"" + model.input_name + "\", got " + brief(name));
  const json& datatype = field(input, "datatype", "inputs[0]");
  if (!datatype.is_string() || datatype.get<std::string>() != "FP32")
    bad("inputs[0].datatype: expected \"FP32\", got " + brief(datatype));
  n = check_shape(field(input, "shape", "inputs[0]"), model, max_batch, "inputs[0]");
  if (auto outputs = request.find("outputs"); outputs != request.end()) {
    if (!outputs->is_array()) bad("outputs: expected an array, got " + type_name(*outputs));
    for (const json& o : *outputs) {
      if (!o.is_object() || !o.contains("name") || o["name"] != model.output_name)
        bad("outputs: expected only {\"name\": \"" + model.output_name + "\"}, got " +
            (o.is_object() && o.contains("name") ? "name " + brief(o["name"]) : brief(o)));
    }
  }
  return input;
}

// The binary tensor extension: the input's bytes follow the JSON, little-endian FP32,
// as many as its parameters.binary_data_size says and its shape needs.
void copy_binary(const json& input, std::string_view bytes, int64_t want, float* out) {
  if (input.contains("data"))
    bad("inputs[0]: expected binary data after the JSON (Inference-Header-Content-Length), "
        "got a \"data\" field too");
  const json* size = nullptr;
  if (auto p = input.find("parameters"); p != input.end() && p->is_object())
    if (auto s = p->find("binary_data_size"); s != p->end()) size = &*s;
  const size_t need = static_cast<size_t>(want) * sizeof(float);
  if (size == nullptr || !size->is_number_unsigned() || size->get<uint64_t>() != need ||
      bytes.size() != need)
    bad("inputs[0].parameters.binary_data_size: expected " + std::to_string(need) +
        " bytes for shape " + shape_text(input["shape"]) + " and as many after the JSON, got " +
        (size ? brief(*size) : std::string("none")) + " and " + std::to_string(bytes.size()));
  std::memcpy(out, bytes.data(), need);
}

}  // namespace

InferRequest parse_infer_request(std::string_view body, const ServedModel& model, int64_t max_batch,
                                 std::optional<size_t> json_length) {
  std::string_view binary;
  if (json_length) {
    if (*json_length > body.size())
      bad("Inference-Header-Content-Length: expected at most the body's " +
          std::to_string(body.size()) + " bytes, got " + std::to_string(*json_length));
    binary = body.substr(*json_length);
    body = body.substr(0, *json_length);
  }
  const size_t max_numbers = static_cast<size_t>(max_batch * shape_numel(model.image_shape));
  RequestJson parsed = read_request_json(body, max_numbers, 4);
  const json& request = parsed.json;
  if (!request.is_object())
    bad("request body: expected a JSON object with \"inputs\", got " + type_name(request));
  InferRequest r;
  if (auto id = request.find("id"); id != request.end()) {
    if (!id->is_string()) bad("id: expected a string, got " + type_name(*id));
    r.id = id->get<std::string>();
  }
  int64_t n = 0;
  const json& input = checked_input(request, model, max_batch, n);
  const int64_t want = n * shape_numel(model.image_shape);
  Shape shape = model.image_shape;
  shape.insert(shape.begin(), n);
  if (json_length) {
    r.images = Tensor::empty(shape);
    copy_binary(input, binary, want, r.images.f32());
    return r;
  }
  const json& data = field(input, "data", "inputs[0]");
  if (!parsed.has_data)
    bad("inputs[0].data: expected numbers (a flat array, or arrays nested as the shape), got " +
        type_name(data));
  const int64_t got = static_cast<int64_t>(parsed.data.size());
  if (got != want)
    bad("inputs[0].data: expected " + std::to_string(want) + " numbers for shape " +
        shape_text(input["shape"]) + ", got " + std::to_string(got));
  r.images = Tensor::empty(shape);
  std::memcpy(r.images.f32(), parsed.data.data(), parsed.data.size() * sizeof(float));
  return r;
}

std::string infer_response(const ServedModel& model, const std::string& id, const Tensor& outputs) {
  json head = {{"model_name", model.name}, {"model_version", "1"}};
  if (!id.empty()) head["id"] = id;
  Shape rest(outputs.shape().begin() + 1, outputs.shape().end());
  const json output = {{"name", model.output_name},
                       {"datatype", "FP32"},
                       {"shape", shape_json(outputs.dim(0), rest)}};
  // The data array is written by hand: nlohmann would print each float as a double
  // (0.1f as 0.10000000149011612), twice as long for the same value.
  std::string out = head.dump();
  out.pop_back();  // the closing brace
  std::string o = output.dump();
  o.pop_back();
  out += ",\"outputs\":[" + o + ",\"data\":[";
  const float* v = outputs.f32();
  out.reserve(out.size() + static_cast<size_t>(outputs.numel()) * 12 + 8);
  for (int64_t i = 0; i < outputs.numel(); ++i) {
    if (i) out += ',';
    append_float(out, v[i]);
  }
  out += "]}]}";
  return out;
}

std::string model_metadata(const ServedModel& model, int64_t max_batch) {
  json parameters = {
      {"dtype", model.dtype}, {"max_batch", max_batch}, {"classify", model.classify.has_value()}};
  if (model.classify) parameters["preprocess"] = model.classify->name;
  if (!model.classify) parameters["classify_refusal"] = model.classify_refusal;
  const json j = {{"name", model.name},
                  {"versions", {"1"}},
                  {"platform", "resnet"},
                  {"inputs",
                   {{{"name", model.input_name},
                     {"datatype", "FP32"},
                     {"shape", shape_json(-1, model.image_shape)}}}},
                  {"outputs",
                   {{{"name", model.output_name},
                     {"datatype", "FP32"},
                     {"shape", shape_json(-1, model.output_shape)}}}},
                  {"parameters", parameters}};
  return j.dump();
}

std::string classify_response(const ServedModel& model, const float* outputs, int64_t top_k) {
  const int64_t classes = model.output_shape.empty() ? 1 : shape_numel(model.output_shape);
  const std::vector<double> p = class_probabilities(outputs, classes, model.outputs_probabilities);
  json top = json::array();
  for (int64_t i : top_classes(p, std::min(top_k, classes))) {
    const std::string label = static_cast<size_t>(i) < model.class_names.size()
                                  ? model.class_names[static_cast<size_t>(i)]
                                  : std::to_string(i);
    top.push_back({{"class", label}, {"index", i}, {"probability", p[static_cast<size_t>(i)]}});
  }
  const json j = {{"model_name", model.name},
                  {"preprocess", model.classify ? model.classify->name : ""},
                  {"top", top}};
  return j.dump();
}

std::string error_body(const std::string& message) {
  // A message echoing a request's field is cut short; invalid UTF-8 is replaced, never a
  // throw.
  constexpr size_t kMaxMessage = 1000;
  const std::string text =
      message.size() <= kMaxMessage ? message : message.substr(0, kMaxMessage) + "...";
  return json{{"error", text}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace resnet::serve
