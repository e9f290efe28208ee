// The end of an epoch and of a stopped run: evaluation, metrics.csv and the curves, and the
// checkpoints (last.* as an atomic pair, best.*, the moving average's), written by rank 0
// alone, after the ranks agree on the weights.

#include <cstdio>

#include "replica_state.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/plot_svg.h"
#include "training_run.h"

namespace resnet::train {

void TrainingRun::save_weights(const std::string& path, const std::string& id) {
  info_.epoch = state_.epoch;
  std::map<std::string, std::string> metadata = info_.to_metadata();
  if (!id.empty()) metadata[kCheckpointIdKey] = id;
  io::save_state_dict(*model_.model, path, metadata);
}

void TrainingRun::save_last() {
  write_bad_images(data_, config_.out);
  const std::string id = checkpoint_id(state_.global_step, state_.epoch);
  save_checkpoint_pair(
      files_.pair(), [&](const std::string& path) { save_weights(path, id); },
      [&](const std::string& path) {
        auto tensors = model_.sgd->state_tensors();
        if (model_.ema)
          for (auto& entry : model_.ema->state_tensors()) tensors.push_back(std::move(entry));
        auto metadata = state_metadata(state_);
        metadata[kCheckpointIdKey] = id;
        io::write_safetensors(path, tensors, metadata);
      });
}

void TrainingRun::agree_before_checkpoint() {
  share_root_buffers(comm_, model_);
  check_replicas_agree(comm_, model_);
}

bool TrainingRun::guarded_write(const std::function<void()>& write) {
  if (!comm_.is_root()) return true;  // rank 0 alone writes --out
  try {
    write();
    return true;
  } catch (const Error& e) {
    RESNET_CHECK(config_.keep_going_on_write_error,
                 "train: checkpoint not saved: "
                     << e.what() << "; the previous checkpoint in " << config_.out
                     << " is intact (--resume continues from it; --keep-going-on-write-error "
                        "trains on without saving)");
    std::fprintf(stderr, "warning: checkpoint not saved (training goes on): %s\n", e.what());
    return false;
  }
}

void TrainingRun::stop_and_save(std::chrono::steady_clock::time_point start,
                                double seconds_before) {
  state_.seconds = seconds_before +
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop_requested() = false;
  agree_before_checkpoint();
  const bool saved = guarded_write([&] { save_last(); });
  progress_.finish_epoch("stopped at epoch " + std::to_string(state_.epoch + 1) + ", batch " +
                         std::to_string(state_.next_batch) +
                         (saved ? "; checkpoint saved in " + config_.out
                                : "; no checkpoint saved, the last one in " + config_.out) +
                         " (continue with --resume)");
  result_.interrupted = true;
  result_.epochs_done = state_.epoch;
}

void TrainingRun::finish_epoch(double seconds) {
  const double data_wait_share = progress_.data_wait_share();  // of training, not testing
  share_root_buffers(comm_, model_);
  Evaluation test = evaluate(*model_.model, *data_.test_loader, config_.test_flip, comm_);
  rows_.push_back({state_.epoch + 1, state_.loss_sum / static_cast<double>(state_.seen),
                   static_cast<double>(state_.correct) / static_cast<double>(state_.seen),
                   test.loss, test.accuracy, lr_, seconds});
  const std::optional<Evaluation> ema = finish_epoch_ema(rows_.back());
  guarded_write([&] {
    io::write_file_atomic(files_.metrics(), metrics_csv(rows_, model_.ema != nullptr));
    write_svg(files_.path("curves.svg"), training_curves(files_.metrics()), 2);
  });
  const bool best = test.accuracy > state_.best_acc;
  if (best) state_.best_acc = test.accuracy;
  // The state saved is that of the next epoch's start. best.* goes first: a kill between
  // the two leaves a state that has not yet counted this epoch as best, so a resumed run
  // redoes both.
  const RunState current = state_;
  state_ = current.next_epoch();
  agree_before_checkpoint();
  guarded_write([&] {
    if (best) save_weights(files_.best(), "");
    save_last();
  });
  state_ = current;
  char summary[256];
  std::snprintf(
      summary, sizeof summary,
      "epoch %lld/%lld: train loss %.4f acc %.4f | test loss %.4f acc %.4f%s | lr %.4g | %s"
      " | data wait %.1f%%",
      static_cast<long long>(state_.epoch + 1), static_cast<long long>(config_.epochs),
      rows_.back().train_loss, rows_.back().train_acc, test.loss, test.accuracy,
      best ? " (best)" : "", lr_, format_duration(seconds).c_str(), 100 * data_wait_share);
  std::string line = summary + step_breakdown();
  if (ema) {
    char ema_part[96];
    std::snprintf(ema_part, sizeof ema_part, " | ema loss %.4f acc %.4f", ema->loss, ema->accuracy);
    line += ema_part;
  }
  progress_.finish_epoch(line);
  result_.last_test_acc = test.accuracy;
  // The loop's ++epoch makes this next_epoch() again.
  RunState next = current.next_epoch();
  next.epoch = current.epoch;
  state_ = next;
}

std::optional<Evaluation> TrainingRun::finish_epoch_ema(EpochRow& row) {
  if (!model_.ema) return std::nullopt;
  nn::Module& average = model_.ema->module();
  const Evaluation test = evaluate(average, *data_.test_loader, config_.test_flip, comm_);
  average.eval();  // evaluate() leaves a module in training mode
  row.ema_test_loss = test.loss;
  row.ema_test_acc = test.accuracy;
  info_.epoch = state_.epoch + 1;
  check_replicas_agree(comm_, model_);
  guarded_write([&] { io::save_state_dict(average, files_.ema(), info_.to_metadata()); });
  if (test.accuracy > state_.best_ema_acc) {
    state_.best_ema_acc = test.accuracy;
    guarded_write([&] { io::save_state_dict(average, files_.best_ema(), info_.to_metadata()); });
  }
  return test;
}

}  // namespace resnet::train
