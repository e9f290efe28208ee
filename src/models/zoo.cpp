#include "resnet/models/zoo.h"

#include <charconv>

#include "resnet/core/error.h"
#include "resnet/nn/residual_block.h"

namespace resnet::models {

namespace {

struct BlockSpec {
  int64_t in = 0, out = 0, stride = 1;
};

std::string join_known() {
  std::string s;
  for (const auto& n : known_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// "block:IN,OUT[,STRIDE]" with positive integers.
BlockSpec parse_block(const std::string& name) {
  std::vector<int64_t> values;
  std::string rest = name.substr(6);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    std::string item =
        rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    RESNET_CHECK(ec == std::errc() && ptr == item.data() + item.size() && v > 0 && v <= (1 << 20),
                 "model '" << name
                           << "': expected block:IN,OUT[,STRIDE] with positive integers, got '"
                           << item << "'");
    values.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  RESNET_CHECK(values.size() == 2 || values.size() == 3,
               "model '" << name << "': expected block:IN,OUT[,STRIDE], got " << values.size()
                         << " numbers");
  return {values[0], values[1], values.size() == 3 ? values[2] : 1};
}

}  // namespace

std::vector<std::string> known_names() {
  return {"block:IN,OUT[,STRIDE]"};
}

nn::ModulePtr build(const std::string& name, const ModelOptions& options) {
  (void)options;
  if (name.rfind("block:", 0) == 0) {
    BlockSpec b = parse_block(name);
    return std::make_shared<nn::ResidualBlock>(b.in, b.out, b.stride);
  }
  RESNET_FAIL("unknown model '" << name << "' (known: " << join_known() << ")");
}

int64_t expected_in_channels(const std::string& name, const ModelOptions& options) {
  if (name.rfind("block:", 0) == 0) return parse_block(name).in;
  return options.in_channels;
}

}  // namespace resnet::models
