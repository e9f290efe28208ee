// The training loop: epochs of batches, one step (forward, loss, backward with the
// gradients summed over the ranks when distributed, SGD) and its bookkeeping. Set-up is in
// training_run_setup.cpp, the end of an epoch and the checkpoints in training_run_epoch.cpp.

#include "resnet/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/mixup.h"
#include "resnet/train/top_k.h"
#include "training_run.h"

namespace resnet::train {

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

TrainResult TrainingRun::run() {
  if (stop_requested()) {
    // Ctrl-C while opening the data or building the model: nothing has been trained.
    stop_requested() = false;
    std::printf("stopped during set-up; nothing saved\n");
    result_.interrupted = true;
    result_.epochs_done = state_.epoch;
    return result_;
  }
  std::printf(
      "training %s on %s (%lld train / %lld test images, %s), %lld epochs of %lld batches, %d "
      "threads%s\n",
      config_.model.c_str(), config_.data.c_str(),
      static_cast<long long>(data_.datasets.train->size()),
      static_cast<long long>(data_.datasets.test->size()), data_.shape.str().c_str(),
      static_cast<long long>(config_.epochs), static_cast<long long>(batches_),
      backend::num_threads(),
      comm_.distributed()
          ? (" per rank; " + std::to_string(comm_.size()) + " ranks, " +
             std::to_string(config_.batch / comm_.size()) + " images each per batch, " +
             std::to_string(reducer_->bucket_count()) + " gradient buckets" +
             (config_.sync_bn ? ", synchronised BatchNorm" : ""))
                .c_str()
          : "");
  for (; state_.epoch < config_.epochs; ++state_.epoch) {
    const auto start = std::chrono::steady_clock::now();
    const double seconds_before = state_.seconds;
    if (!train_epoch(start, seconds_before)) return result_;
    finish_epoch(seconds_before +
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  result_.best_test_acc = state_.best_acc;
  result_.epochs_done = config_.epochs;
  return result_;
}

bool TrainingRun::train_epoch(std::chrono::steady_clock::time_point start, double seconds_before) {
  progress_.start_epoch(state_.epoch, config_.epochs, batches_, state_.next_batch);
  data_.train_loader->start_epoch(state_.epoch, state_.next_batch);
  lr_ = model_.schedule->lr_at(state_.global_step);
  auto waiting_since = std::chrono::steady_clock::now();
  times_ = {};
  while (auto batch = data_.train_loader->next()) {
    if (batch->index >= batches_) break;  // a data-parallel run's too-short last batch
    const auto now = std::chrono::steady_clock::now();
    progress_.add_data_wait(std::chrono::duration<double>(now - waiting_since).count());
    train_batch(*batch);
    waiting_since = std::chrono::steady_clock::now();
    const bool stop = comm_.distributed() ? stop_all_ : stop_requested().load();  // all ranks agree
    if (stop || (config_.max_steps > 0 && steps_here_ >= config_.max_steps)) {
      stop_and_save(start, seconds_before);
      return false;
    }
    if (config_.save_every > 0 && state_.global_step % config_.save_every == 0 &&
        state_.next_batch < batches_) {
      // The epoch's last batch is saved by finish_epoch, after its evaluation.
      state_.seconds =
          seconds_before +
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      agree_before_checkpoint();
      guarded_write([&] { save_last(); });
    }
  }
  return true;
}

TrainingRun::StepTotals TrainingRun::step_totals(double loss, int64_t correct, int64_t images) {
  if (!comm_.distributed()) return {loss, correct, images, stop_requested()};
  double loss_sum = loss * static_cast<double>(images);
  comm_.allreduce_sum(std::span(&loss_sum, 1), "step loss");
  int64_t counts[3] = {correct, images, stop_requested() ? 1 : 0};
  comm_.allreduce_sum(std::span(counts), "step counts");
  return {loss_sum / static_cast<double>(counts[1]), counts[0], counts[1], counts[2] > 0};
}

void TrainingRun::backward(const Tensor& grad_logits, double forward_seconds) {
  if (!reducer_) {
    model_.model->backward(grad_logits);
    return;
  }
  reducer_->backward(grad_logits);
  const dist::ReduceTiming& t = reducer_->last();
  ++times_.steps;
  times_.forward += forward_seconds;
  times_.backward += t.backward;
  times_.reduce += t.reduce;
  times_.exposed += t.exposed;
  progress_.add_comm_wait(t.exposed);
}

std::string TrainingRun::step_breakdown() const {
  if (times_.steps == 0) return "";
  const double n = static_cast<double>(times_.steps);
  const double hidden = times_.reduce > 0 ? 1.0 - times_.exposed / times_.reduce : 1.0;
  char text[160];
  std::snprintf(text, sizeof text,
                " | step %.0f ms: forward %.0f, backward %.0f, allreduce %.0f (%.0f%% hidden), "
                "exposed wait %.0f",
                1e3 * (times_.forward + times_.backward + times_.exposed) / n,
                1e3 * times_.forward / n, 1e3 * times_.backward / n, 1e3 * times_.reduce / n,
                100 * std::max(0.0, hidden), 1e3 * times_.exposed / n);
  return text;
}

void TrainingRun::train_batch(const data::Batch& batch) {
  const auto forward_start = std::chrono::steady_clock::now();
  lr_ = model_.schedule->lr_at(state_.global_step);
  model_.sgd->set_lr(lr_);
  nn::Module& model = *model_.model;
  std::span<const int64_t> labels(batch.labels.i64(), static_cast<size_t>(batch.size()));
  // MixUp/CutMix: soft targets, and the training accuracy counts the dominant label.
  std::optional<MixResult> mixed;
  if (mix_.enabled())
    mixed = mix_batch(batch.images, labels, config_.model_options.num_classes, mix_, state_.epoch,
                      batch.index);
  Tensor logits = model.forward(mixed ? mixed->images : batch.images);
  CrossEntropyResult ce = mixed
                              ? cross_entropy_soft(logits, mixed->targets, config_.label_smoothing)
                              : cross_entropy(logits, labels, config_.label_smoothing);
  if (comm_.distributed()) {
    // The loss is the mean over the global batch: this rank's mean, weighted by its share.
    const float share = static_cast<float>(batch.size()) / static_cast<float>(batch.global_size);
    for (float& g : ce.grad_logits.values()) g *= share;
  } else {
    check_finite_loss(ce.loss, batch.index);
  }
  model.zero_grad();
  backward(ce.grad_logits,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count());
  const int64_t local_correct = count_top_k_correct(
      logits, mixed ? std::span<const int64_t>(mixed->dominant_labels) : labels, 1);
  const StepTotals totals = step_totals(ce.loss, local_correct, batch.size());
  stop_all_ = totals.stop;
  if (comm_.distributed()) check_finite_loss(totals.loss, batch.index);
  if (grad_norms_.is_open() && state_.global_step < config_.grad_norm_steps)
    record_grad_norms(model, state_.global_step, grad_norms_);
  model_.sgd->step();
  if (model_.ema) model_.ema->update(model);
  ++state_.global_step;
  ++steps_here_;
  state_.next_batch = batch.index + 1;
  state_.loss_sum += totals.loss * static_cast<double>(totals.images);
  state_.correct += totals.correct;
  state_.seen += totals.images;
  if (step_log_)
    step_log_->add(state_.global_step, state_.epoch + 1, totals.loss, totals.correct,
                   totals.images);
  progress_.update(batch.index, state_.loss_sum / static_cast<double>(state_.seen),
                   static_cast<double>(state_.correct) / static_cast<double>(state_.seen),
                   totals.images);
}

void TrainingRun::check_finite_loss(double loss, int64_t batch_index) const {
  if (std::isfinite(loss)) return;
  std::ostringstream line;
  line << "train: loss is " << loss << " at epoch " << state_.epoch + 1 << ", batch "
       << batch_index + 1 << " (step " << state_.global_step + 1
       << "); lower --lr or check the data";
  if (comm_.distributed()) throw dist::AgreedError(line.str());  // every rank sees it
  throw Error(line.str());
}

TrainResult train(TrainConfig config, bool resume) {
  return train(std::move(config), resume, *dist::single_process());
}

TrainResult train(TrainConfig config, bool resume, dist::Communicator& comm) {
  TrainingRun run(std::move(config), resume, comm);
  return run.run();
}

}  // namespace resnet::train
