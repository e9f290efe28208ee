#include "serve/request_json.h"

#include <cmath>
#include <limits>
#include <string>

#include "serve/kserve.h"

namespace resnet::serve {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxValues = 10000;

// nlohmann's SAX interface: a small DOM builder for everything but the data array, whose
// numbers it appends to `out.data`. Returning false stops the parser; `error` says why.
class Reader {
 public:
  Reader(RequestJson& out, size_t max_numbers, int max_data_depth)
      : out_(out), max_numbers_(max_numbers), max_data_depth_(max_data_depth) {}

  bool null() { return value(nullptr, "null"); }
  bool boolean(bool v) { return value(v, "a boolean"); }
  bool number_integer(json::number_integer_t v) { return number(static_cast<double>(v), v); }
  bool number_unsigned(json::number_unsigned_t v) { return number(static_cast<double>(v), v); }
  bool number_float(json::number_float_t v, const std::string&) { return number(v, v); }
  bool string(std::string& v) { return value(std::move(v), "a string"); }
  bool binary(json::binary_t&) { return fail("request body: expected JSON, got binary values"); }
  bool start_object(size_t) { return open(json::object(), "an object"); }
  bool end_object() { return close(); }
  bool start_array(size_t) {
    if (data_depth_ > 0 || starts_data()) {
      if (++data_depth_ > max_data_depth_)
        return fail("inputs[0].data: expected arrays nested at most " +
                    std::to_string(max_data_depth_) + " deep, as the shape, got deeper");
      return true;
    }
    return open(json::array(), "an array");
  }
  bool end_array() {
    if (data_depth_ > 0) {
      --data_depth_;
      return true;
    }
    return close();
  }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
    return fail(std::string("request body: expected JSON, got a parse error: ") + e.what());
  }

  const std::string& error() const { return error_; }

 private:
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  // Whether the array about to open is inputs[i].data: root object -> "inputs" array ->
  // an input object, under the key "data".
  bool starts_data() {
    if (stack_.size() != 3 || keys_[1] != "inputs" || !stack_[2]->is_object() || key_ != "data")
      return false;
    if (out_.has_data) return fail("inputs: expected one input with data, got several");
    out_.has_data = true;
    (*stack_[2])["data"] = nullptr;
    return true;
  }

  template <typename T>
  bool number(double v, T exact) {
    if (data_depth_ == 0) return value(exact, "a number");
    if (!(std::fabs(v) <= std::numeric_limits<float>::max()))
      return fail("inputs[0].data: expected finite FP32 values, got " + std::to_string(v));
    if (out_.data.size() >= max_numbers_)
      return fail("inputs[0].data: expected at most " + std::to_string(max_numbers_) +
                  " numbers (--max-batch images of the model's shape), got more");
    out_.data.push_back(static_cast<float>(v));
    return true;
  }

  // Places a value in the open container (or as the root); containers are pushed.
  bool place(json v, bool container) {
    if (data_depth_ > 0) return false;
    if (++values_ > kMaxValues)
      return fail("request body: expected at most " + std::to_string(kMaxValues) +
                  " JSON values besides the data, got more");
    json* slot = nullptr;
    if (stack_.empty()) {
      out_.json = std::move(v);
      slot = &out_.json;
    } else if (stack_.back()->is_array()) {
      stack_.back()->push_back(std::move(v));
      slot = &stack_.back()->back();
    } else {
      slot = &(*stack_.back())[key_];
      *slot = std::move(v);
    }
    if (container) {
      if (stack_.size() >= kMaxDepth)
        return fail("request body: expected JSON nested at most " + std::to_string(kMaxDepth) +
                    " deep, got deeper");
      keys_.push_back(stack_.empty() || stack_.back()->is_array() ? std::string() : key_);
      stack_.push_back(slot);
    }
    return true;
  }

  template <typename T>
  bool value(T&& v, const char* what) {
    if (data_depth_ > 0)
      return fail(std::string("inputs[0].data: expected numbers (a flat array, or arrays nested "
                              "as the shape), got ") +
                  what);
    return place(json(std::forward<T>(v)), false);
  }

  bool open(json container, const char* what) {
    if (data_depth_ > 0) return value(nullptr, what);
    return place(std::move(container), true);
  }

  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  RequestJson& out_;
  const size_t max_numbers_;
  const int max_data_depth_;
  std::vector<json*> stack_;       // the open containers, root first
  std::vector<std::string> keys_;  // the key each open container sits under ("" in arrays)
  std::string key_;                // the last key read
  int data_depth_ = 0;             // arrays open inside the data
  size_t values_ = 0;
  std::string error_;
};

}  // namespace

RequestJson read_request_json(std::string_view body, size_t max_numbers, int max_data_depth) {
  RequestJson out;
  Reader reader(out, max_numbers, max_data_depth);
  if (!json::sax_parse(body.begin(), body.end(), &reader))
    throw HttpError(400, reader.error().empty() ? "request body: expected JSON" : reader.error());
  return out;
}

}  // namespace resnet::serve
