#include "resnet/train/lr_schedule_spec.h"

#include <charconv>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "resnet/core/error.h"

namespace resnet::train {
namespace {

constexpr const char* kKnown =
    "constant, multistep:M1,M2,...[:GAMMA], cosine[:ETA_MIN], "
    "onecycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR]]]";

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(sep, begin);
    parts.push_back(text.substr(begin, end == std::string::npos ? end : end - begin));
    if (end == std::string::npos) return parts;
    begin = end + 1;
  }
}

// The whole of `text` as a number of type T, or an error naming the spec and the field.
template <typename T>
T parse_number(const std::string& spec, const char* field, const std::string& text) {
  T value{};
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  bool ok = !text.empty() && ec == std::errc() && ptr == last;
  if constexpr (std::is_floating_point_v<T>) ok = ok && std::isfinite(value);
  RESNET_CHECK(ok, "lr schedule '" << spec << "': expected " << field << " to be "
                                   << (std::is_integral_v<T> ? "an integer" : "a finite number")
                                   << ", got '" << text << "'");
  return value;
}

void check_arity(const std::string& spec, const std::vector<std::string>& parts, size_t most) {
  RESNET_CHECK(parts.size() <= most, "lr schedule '" << spec << "': expected at most " << most - 1
                                                     << " ':'-separated arguments to " << parts[0]
                                                     << ", got " << parts.size() - 1);
}

int64_t main_steps(const std::string& spec, int64_t total_steps, int64_t warmup_steps) {
  RESNET_CHECK(total_steps > warmup_steps,
               "lr schedule '" << spec << "': expected total steps (" << total_steps
                               << ") greater than the warm-up steps (" << warmup_steps << ")");
  return total_steps - warmup_steps;
}

std::unique_ptr<LrSchedule> parse_main(const std::string& spec, double base_lr, int64_t total_steps,
                                       int64_t warmup_steps) {
  const std::vector<std::string> parts = split(spec, ':');
  const std::string& kind = parts[0];
  if (kind == "constant") {
    check_arity(spec, parts, 1);
    return make_constant_lr(base_lr);
  }
  if (kind == "multistep") {
    check_arity(spec, parts, 3);
    RESNET_CHECK(parts.size() >= 2, "lr schedule '" << spec
                                                    << "': expected milestones, as in "
                                                       "multistep:30,60 or multistep:30,60:0.1");
    std::vector<int64_t> milestones;
    for (const std::string& m : split(parts[1], ',')) {
      milestones.push_back(parse_number<int64_t>(spec, "a milestone", m));
      RESNET_CHECK(milestones.back() >= 0 &&
                       (milestones.size() == 1 || milestones.back() > milestones.end()[-2]),
                   "lr schedule '" << spec
                                   << "': expected strictly increasing milestones >= 0, got "
                                   << parts[1]);
    }
    const double gamma = parts.size() > 2 ? parse_number<double>(spec, "gamma", parts[2]) : 0.1;
    return make_multistep_lr(base_lr, std::move(milestones), gamma);
  }
  if (kind == "cosine") {
    check_arity(spec, parts, 2);
    const double eta_min = parts.size() > 1 ? parse_number<double>(spec, "eta_min", parts[1]) : 0.0;
    return make_cosine_lr(base_lr, main_steps(spec, total_steps, warmup_steps), eta_min);
  }
  if (kind == "onecycle") {
    check_arity(spec, parts, 4);
    OneCycleOptions o;
    if (parts.size() > 1) o.pct_start = parse_number<double>(spec, "pct_start", parts[1]);
    if (parts.size() > 2) o.div_factor = parse_number<double>(spec, "div_factor", parts[2]);
    if (parts.size() > 3) {
      o.final_div_factor = parse_number<double>(spec, "final_div_factor", parts[3]);
    }
    return make_onecycle_lr(base_lr, main_steps(spec, total_steps, warmup_steps), o);
  }
  RESNET_FAIL("lr schedule '" << spec << "': unknown kind '" << kind << "' (known: " << kKnown
                              << ")");
}

}  // namespace

std::unique_ptr<LrSchedule> parse_lr_schedule(const std::string& spec, double base_lr,
                                              int64_t total_steps, int64_t warmup_steps,
                                              double warmup_start_factor) {
  RESNET_CHECK(warmup_steps >= 0,
               "lr schedule '" << spec << "': expected warm-up steps >= 0, got " << warmup_steps);
  return make_warmup_lr(parse_main(spec, base_lr, total_steps, warmup_steps), warmup_steps,
                        warmup_start_factor);
}

}  // namespace resnet::train
