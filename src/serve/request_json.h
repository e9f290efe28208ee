#pragma once
// Reading an infer request's JSON without building a document for its data: the numbers
// of inputs[i].data go straight into floats as the parser meets them, and everything else
// (a few fields) becomes an ordinary nlohmann::json. A DOM would spend about 16 bytes and
// an allocation-prone node per number, ten times the body for a large image; here the
// floats are bounded by what the model can take, whatever the body holds.

#include <cstddef>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace resnet::serve {

struct RequestJson {
  // The request; the data array, when there is one, stands as null in its place.
  nlohmann::json json;
  bool has_data = false;
  std::vector<float> data;  // its numbers, row-major
};

// Parses `body`. Refuses (HttpError 400, naming what was expected and what was found):
// invalid JSON; more than `max_numbers` numbers in the data (the most a request may
// hold: --max-batch images of the model's shape), or data nested deeper than
// `max_data_depth` arrays; anything in the data but numbers, or numbers that are no
// finite FP32; containers nested deeper than 64 elsewhere, or more than 10000 values
// outside the data.
RequestJson read_request_json(std::string_view body, size_t max_numbers, int max_data_depth);

}  // namespace resnet::serve
