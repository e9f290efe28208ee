#pragma once
// One `resnet train` run, private to src/train: the files of its output directory and the
// class whose members are the loop's steps. The members live in three files:
// training_run_setup.cpp (configuration, resume, set-up), trainer.cpp (the loop and one
// step) and training_run_epoch.cpp (evaluation, metrics and checkpoints).

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint_pair.h"
#include "evaluation.h"
#include "resnet/dist/communicator.h"
#include "resnet/dist/gradient_reducer.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/mixup.h"
#include "resnet/train/progress.h"
#include "resnet/train/trainer.h"
#include "run_state.h"
#include "step_log.h"
#include "train_data.h"
#include "train_model.h"

namespace resnet::train {

// The files of a run's output directory (trainer.h lists them).
struct RunFiles {
  explicit RunFiles(const std::string& out) : dir(out) {}
  std::filesystem::path dir;
  std::string path(const char* name) const { return (dir / name).string(); }
  std::string config() const { return path("config.json"); }
  std::string last() const { return path("last.safetensors"); }
  std::string state() const { return path("last.state.safetensors"); }
  std::string best() const { return path("best.safetensors"); }
  std::string ema() const { return path("ema.safetensors"); }
  std::string best_ema() const { return path("best_ema.safetensors"); }
  std::string metrics() const { return path("metrics.csv"); }
  CheckpointPairPaths pair() const { return {last(), state()}; }
};

// One training run: everything the loop touches, and the loop's steps by name.
class TrainingRun {
 public:
  TrainingRun(TrainConfig config, bool resume, dist::Communicator& comm);
  TrainResult run();

 private:
  CheckpointInfo checkpoint_info() const;
  void restore();
  void start_fresh();
  // Trains the rest of the current epoch; false when stopped (Ctrl-C or --max-steps).
  bool train_epoch(std::chrono::steady_clock::time_point start, double seconds_before);
  void train_batch(const data::Batch& batch);
  // Backward (with the gradients summed over the ranks when distributed), timed.
  void backward(const Tensor& grad_logits, double forward_seconds);
  // The batch's loss, correct count and size over all ranks, and whether any rank was
  // asked to stop; the same on every rank.
  struct StepTotals {
    double loss = 0.0;
    int64_t correct = 0, images = 0;
    bool stop = false;
  };
  StepTotals step_totals(double loss, int64_t correct, int64_t images);
  // The epoch's mean step time split, for the summary of a data-parallel run.
  std::string step_breakdown() const;
  void start_distributed();
  void check_finite_loss(double loss, int64_t batch_index) const;
  void stop_and_save(std::chrono::steady_clock::time_point start, double seconds_before);
  // Evaluates, records metrics and checkpoints, and prints the epoch's summary.
  void finish_epoch(double seconds);
  void save_weights(const std::string& path, const std::string& id);
  // last.* as a pair (checkpoint_pair.h), at the current state.
  void save_last();
  // Data-parallel: every rank takes rank 0's BatchNorm buffers and checks that the
  // replicas agree (collectives, so every rank calls it) before a checkpoint is written.
  void agree_before_checkpoint();
  // Runs the checkpoint writes in `write` (on rank 0 only); a failure (a full disk) ends the run
  // with the previous checkpoint intact, or with keep_going_on_write_error is reported and skipped
  // (false).
  bool guarded_write(const std::function<void()>& write);
  // Tests the moving average (--ema) and saves it; returns its evaluation.
  std::optional<Evaluation> finish_epoch_ema(EpochRow& row);

  TrainConfig config_;
  dist::Communicator& comm_;
  bool resume_;
  RunFiles files_;
  TrainingData data_;
  TrainingModel model_;
  int64_t batches_ = 0;
  CheckpointInfo info_;
  RunState state_;
  std::vector<EpochRow> rows_;
  std::unique_ptr<StepLog> step_log_;
  std::ofstream grad_norms_;
  Progress progress_;
  TrainResult result_;
  int64_t steps_here_ = 0;
  double lr_ = 0.0;
  MixOptions mix_;
  // Data-parallel only: the gradient reduction, whether a rank asked to stop, and the
  // epoch's step time split (seconds summed over its steps).
  std::unique_ptr<dist::GradientReducer> reducer_;
  bool stop_all_ = false;
  struct StepTimes {
    int64_t steps = 0;
    double forward = 0, backward = 0, reduce = 0, exposed = 0;
  } times_;
};

}  // namespace resnet::train
