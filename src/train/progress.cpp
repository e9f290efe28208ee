#include "resnet/train/progress.h"

#include <algorithm>
#include <cstdio>

namespace resnet::train {

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

Progress::Progress(bool terminal, int64_t line_every)
    : terminal_(terminal), line_every_(line_every) {}

void Progress::start_epoch(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch) {
  epoch_ = epoch;
  epochs_ = epochs;
  batches_ = batches;
  first_batch_ = first_batch;
  images_ = 0;
  data_wait_ = 0;
  comm_wait_ = 0;
  start_ = std::chrono::steady_clock::now();
}

double Progress::data_wait_share() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? std::min(1.0, data_wait_ / elapsed) : 0.0;
}

double Progress::comm_wait_share() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? std::min(1.0, comm_wait_ / elapsed) : 0.0;
}

void Progress::update(int64_t batch, double loss, double accuracy, int64_t images) {
  images_ += images;
  const int64_t done = batch + 1;
  const bool last = done == batches_;
  if (!terminal_ && !last && done % line_every_ != 0) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(images_) / elapsed : 0.0;
  const double per_batch =
      done > first_batch_ ? elapsed / static_cast<double>(done - first_batch_) : 0.0;
  const std::string eta = format_duration(per_batch * static_cast<double>(batches_ - done));
  char comm[32] = "";
  if (show_comm_) std::snprintf(comm, sizeof comm, " allreduce %.1f%%", 100 * comm_wait_share());
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / batches_);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    std::printf(
        "\repoch %lld/%lld [%s] %lld/%lld loss %.4f acc %5.2f%% %6.0f img/s data %2.0f%%%s ETA "
        "%s \x1b[K",
        static_cast<long long>(epoch_ + 1), static_cast<long long>(epochs_), bar.c_str(),
        static_cast<long long>(done), static_cast<long long>(batches_), loss, 100 * accuracy, rate,
        100 * data_wait_share(), comm, eta.c_str());
  } else {
    std::printf(
        "epoch %lld/%lld batch %lld/%lld loss %.4f acc %.4f %.0f img/s data %.1f%%%s eta %s\n",
        static_cast<long long>(epoch_ + 1), static_cast<long long>(epochs_),
        static_cast<long long>(done), static_cast<long long>(batches_), loss, accuracy, rate,
        100 * data_wait_share(), comm, eta.c_str());
  }
  std::fflush(stdout);
}

void Progress::finish_epoch(const std::string& summary) {
  if (terminal_) std::printf("\r\x1b[K");
  std::printf("%s\n", summary.c_str());
  std::fflush(stdout);
}

}  // namespace resnet::train
