#pragma once
// Training progress on stdout: on a terminal, one line redrawn in place (a bar, loss,
// accuracy, images/s, the share of the time spent waiting for data, ETA); otherwise plain
// lines at intervals, for logs.

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
  // Time the training thread spent blocked waiting for the loader's next batch: when it is
  // a visible share of the epoch, the step is data-bound (more --workers may help).
  void add_data_wait(double seconds) { data_wait_ += seconds; }
  // data wait / elapsed time since the epoch started, in [0, 1].
  double data_wait_share() const;
  // Data-parallel runs: time spent waiting for the gradient allreduce after the backward
  // pass (what overlap did not hide); the line then shows its share of the time too.
  void add_comm_wait(double seconds) {
    comm_wait_ += seconds;
    show_comm_ = true;
  }
  double comm_wait_share() const;
  // Ends the epoch's line with a summary.
  void finish_epoch(const std::string& summary);

 private:
  bool terminal_;
  int64_t line_every_;
  int64_t epoch_ = 0, epochs_ = 0, batches_ = 0, first_batch_ = 0, images_ = 0;
  double data_wait_ = 0, comm_wait_ = 0;
  bool show_comm_ = false;
  std::chrono::steady_clock::time_point start_;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace resnet::train
