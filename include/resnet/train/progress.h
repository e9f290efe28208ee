#pragma once
// Training progress on stdout: on a terminal, one line redrawn in place (a bar, loss,
// accuracy, images/s, ETA); otherwise plain lines at intervals, for logs.

#include <chrono>
#include <cstdint>
#include <string>

namespace resnet::train {

class Progress {
 public:
  // `terminal` selects the redrawn bar; lines go out every `line_every` batches otherwise.
  Progress(bool terminal, int64_t line_every);
  void start_epoch(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch);
  void update(int64_t batch, double loss, double accuracy, int64_t images);
  // Ends the epoch's line with a summary.
  void finish_epoch(const std::string& summary);

 private:
  bool terminal_;
  int64_t line_every_;
  int64_t epoch_ = 0, epochs_ = 0, batches_ = 0, first_batch_ = 0, images_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace resnet::train
