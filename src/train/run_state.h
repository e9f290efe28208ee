#pragma once
// What a training run keeps between steps and across a --resume: where it stands
// (RunState, saved as the metadata of last.state.safetensors) and the per-epoch rows of
// metrics.csv.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace resnet::train {

// Where a run stands; saved beside the last checkpoint so --resume continues exactly.
struct RunState {
  int64_t epoch = 0;        // the epoch in progress (or next to start)
  int64_t next_batch = 0;   // first batch of `epoch` not yet trained
  int64_t global_step = 0;  // optimizer steps taken
  double best_acc = -1.0;
  double best_ema_acc = -1.0;  // with --ema: the average's best test accuracy
  // Partial sums of the epoch in progress, so its metrics survive an interruption.
  double loss_sum = 0.0, seconds = 0.0;
  int64_t correct = 0, seen = 0;

  // The state at the start of the epoch after this one.
  RunState next_epoch() const;
};

std::map<std::string, std::string> state_metadata(const RunState& s);
// Reads state_metadata()'s keys back; `path` names the file in errors.
RunState parse_state(const std::map<std::string, std::string>& m, const std::string& path);

// One row of metrics.csv; with --ema two more columns, the average's test loss and
// accuracy.
struct EpochRow {
  int64_t epoch;
  double train_loss, train_acc, test_loss, test_acc, lr, seconds;
  double ema_test_loss = 0.0, ema_test_acc = 0.0;
};

std::string metrics_csv(const std::vector<EpochRow>& rows, bool with_ema = false);
// The rows of a metrics.csv written by metrics_csv() (with or without the EMA columns);
// none when the file is missing.
std::vector<EpochRow> read_metrics(const std::string& path);

}  // namespace resnet::train
