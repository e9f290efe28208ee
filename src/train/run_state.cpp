#include "run_state.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "resnet/core/error.h"

namespace resnet::train {

RunState RunState::next_epoch() const {
  RunState next = *this;
  next.epoch = epoch + 1;
  next.next_batch = 0;
  next.loss_sum = next.seconds = 0.0;
  next.correct = next.seen = 0;
  return next;
}

std::map<std::string, std::string> state_metadata(const RunState& s) {
  auto d = [](double v) {
    std::ostringstream o;
    o.precision(17);
    o << v;
    return o.str();
  };
  return {{"epoch", std::to_string(s.epoch)},
          {"next_batch", std::to_string(s.next_batch)},
          {"global_step", std::to_string(s.global_step)},
          {"best_acc", d(s.best_acc)},
          {"loss_sum", d(s.loss_sum)},
          {"seconds", d(s.seconds)},
          {"correct", std::to_string(s.correct)},
          {"seen", std::to_string(s.seen)},
          {"best_ema_acc", d(s.best_ema_acc)}};
}

RunState parse_state(const std::map<std::string, std::string>& m, const std::string& path) {
  auto get = [&](const char* key) -> const std::string& {
    auto it = m.find(key);
    RESNET_CHECK(it != m.end(), path << ": expected training state key '" << key << "'");
    return it->second;
  };
  RunState s;
  try {
    s.epoch = std::stoll(get("epoch"));
    s.next_batch = std::stoll(get("next_batch"));
    s.global_step = std::stoll(get("global_step"));
    s.best_acc = std::stod(get("best_acc"));
    s.loss_sum = std::stod(get("loss_sum"));
    s.seconds = std::stod(get("seconds"));
    s.correct = std::stoll(get("correct"));
    s.seen = std::stoll(get("seen"));
    // Absent from states written before --ema existed.
    if (auto it = m.find("best_ema_acc"); it != m.end()) s.best_ema_acc = std::stod(it->second);
  } catch (const std::logic_error&) {
    RESNET_FAIL(path << ": malformed training state");
  }
  return s;
}

std::string metrics_csv(const std::vector<EpochRow>& rows, bool with_ema) {
  std::ostringstream s;
  s.precision(8);
  s << "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds"
    << (with_ema ? ",ema_test_loss,ema_test_acc" : "") << '\n';
  for (const auto& r : rows) {
    s << r.epoch << ',' << r.train_loss << ',' << r.train_acc << ',' << r.test_loss << ','
      << r.test_acc << ',' << r.lr << ',' << r.seconds;
    if (with_ema) s << ',' << r.ema_test_loss << ',' << r.ema_test_acc;
    s << '\n';
  }
  return s.str();
}

std::vector<EpochRow> read_metrics(const std::string& path) {
  std::vector<EpochRow> rows;
  std::ifstream in(path);
  if (!in) return rows;
  std::string line;
  std::getline(in, line);
  const bool with_ema = line.find(",ema_test_loss,ema_test_acc") != std::string::npos;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochRow r{};
    char comma;
    std::istringstream s(line);
    s >> r.epoch >> comma >> r.train_loss >> comma >> r.train_acc >> comma >> r.test_loss >>
        comma >> r.test_acc >> comma >> r.lr >> comma >> r.seconds;
    if (with_ema) s >> comma >> r.ema_test_loss >> comma >> r.ema_test_acc;
    RESNET_CHECK(!s.fail(), path << ": malformed row '" << line << "'");
    rows.push_back(r);
  }
  return rows;
}

}  // namespace resnet::train
