#include "resnet/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "checkpoint_pair.h"
#include "evaluation.h"
#include "replica_state.h"
#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/dist/communicator.h"
#include "resnet/dist/gradient_reducer.h"
#include "resnet/dist/replicas.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/mixup.h"
#include "resnet/train/plot_svg.h"
#include "resnet/train/progress.h"
#include "resnet/train/top_k.h"
#include "run_state.h"
#include "step_log.h"
#include "train_data.h"
#include "train_model.h"

namespace resnet::train {

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

namespace fs = std::filesystem;

// The files of a run's output directory (trainer.h lists them).
struct RunFiles {
  explicit RunFiles(const std::string& out) : dir(out) {}
  fs::path dir;
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

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  RESNET_CHECK(in, path << ": cannot read (expected a file written by resnet train)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The run's own settings come back from config.json; this invocation may extend the
// epochs and sets its own threads, step limit and checkpoint policy (--save-every given
// again replaces the run's).
TrainConfig resumed_config(const TrainConfig& invocation, const RunFiles& files) {
  RESNET_CHECK(fs::exists(files.config()),
               "--resume: expected " << files.config() << " from an earlier run, found none");
  TrainConfig config = TrainConfig::from_json(read_text(files.config()), files.config());
  config.epochs = std::max(config.epochs, invocation.epochs);
  config.out = invocation.out;  // the directory may have been moved or copied since
  config.threads = invocation.threads;
  config.workers = invocation.workers;  // a machine setting: the batches do not depend on it
  config.max_steps = invocation.max_steps;
  config.log_every = invocation.log_every;
  if (invocation.save_every > 0) config.save_every = invocation.save_every;
  config.keep_going_on_write_error = invocation.keep_going_on_write_error;
  return config;
}

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

// Data-parallel: rank 0 alone reads --out, and hands the run's configuration to the
// others, which keep their own machine settings.
TrainConfig resumed_config(const TrainConfig& invocation, dist::Communicator& comm) {
  if (!comm.distributed()) return resumed_config(invocation, RunFiles(invocation.out));
  TrainConfig config = TrainConfig::from_json(
      dist::from_root(
          comm, "broadcast of the run's config.json",
          [&] { return resumed_config(invocation, RunFiles(invocation.out)).to_json(); }),
      "rank 0's config.json");
  config.threads = invocation.threads;
  config.workers = invocation.workers;
  config.max_steps = invocation.max_steps;
  config.log_every = invocation.log_every;
  config.bucket_mb = invocation.bucket_mb;
  return config;
}

// Whether --out holds a checkpoint to resume from, once an interrupted save is completed
// or dropped (checkpoint_pair.h); rank 0 looks and decides for every rank.
bool has_checkpoint(const std::string& out, dist::Communicator& comm) {
  return dist::from_root(comm, "broadcast of the checkpoint's presence", [&] {
           return std::string(recover_checkpoint_pair(RunFiles(out).pair()) ? "1" : "0");
         }) == "1";
}

TrainConfig checked(TrainConfig config, bool& resume, dist::Communicator& comm) {
  if (resume) {
    config = resumed_config(config, comm);
    if (!has_checkpoint(config.out, comm)) {
      if (comm.is_root())
        std::printf("resume: no checkpoint in %s yet; starting the run from its config.json\n",
                    config.out.c_str());
      resume = false;
    }
  }
  if (config.threads > 0) backend::set_num_threads(config.threads);
  RESNET_CHECK(config.epochs > 0 && config.batch > 0,
               "train: expected positive --epochs and --batch, got " << config.epochs << " and "
                                                                     << config.batch);
  if (comm.distributed() && config.batch % comm.size() != 0) {
    throw dist::AgreedError("train: --batch " + std::to_string(config.batch) +
                            " does not divide across " + std::to_string(comm.size()) +
                            " ranks: expected a multiple of " + std::to_string(comm.size()) +
                            " (--batch is the global batch; each rank takes batch / ranks)");
  }
  if (comm.distributed() && !(config.bucket_mb > 0 && config.bucket_mb <= 1024)) {
    throw dist::AgreedError("train: --bucket-mb " + std::to_string(config.bucket_mb) +
                            ": expected a size in (0, 1024] MB");
  }
  return config;
}

// The batches an epoch trains on: a data-parallel run skips a last batch smaller than
// its ranks (every rank needs a sample), so no sample is seen twice.
int64_t trained_batches(const data::DataLoader& loader, int ranks) {
  const int64_t n = loader.batches_per_epoch();
  const int64_t tail = loader.dataset().size() - (n - 1) * loader.options().batch_size;
  return ranks > 1 && tail < ranks && n > 1 ? n - 1 : n;
}

TrainingRun::TrainingRun(TrainConfig config, bool resume, dist::Communicator& comm)
    : config_(checked(std::move(config), resume, comm)),
      comm_(comm),
      resume_(resume),
      files_(config_.out),
      data_(make_training_data(config_, comm.rank(), comm.size())),
      batches_(trained_batches(*data_.train_loader, comm.size())),
      progress_(isatty(STDOUT_FILENO) != 0, std::max<int64_t>(1, batches_ / 10)) {
  model_ = make_training_model(config_, config_.epochs * batches_, resume_);
  mix_.mixup_alpha = config_.mixup;
  mix_.cutmix_alpha = config_.cutmix;
  mix_.seed = config_.seed;
  info_ = checkpoint_info();
  check_same_start(comm_, config_, data_);
  if (resume_) {
    if (comm_.is_root()) restore();
  } else if (comm_.is_root()) {
    start_fresh();
  }
  if (comm_.distributed()) start_distributed();
  if (!comm_.is_root()) return;  // rank 0 alone writes into --out
  write_val_split(data_, config_.out);
  step_log_ = std::make_unique<StepLog>(files_.path("steps.csv"), resume_, config_.log_every);
  if (config_.grad_norm_steps > 0 && state_.global_step < config_.grad_norm_steps) {
    grad_norms_.open(files_.dir / "grad_norms.csv", resume_ ? std::ios::app : std::ios::trunc);
    if (!resume_) grad_norms_ << "step,layer,depth,norm\n";
  }
}

void TrainingRun::start_distributed() {
  share_root_state(comm_, model_, state_);
  if (config_.sync_bn) dist::synchronise_batchnorm(*model_.model, comm_);
  reducer_ = std::make_unique<dist::GradientReducer>(
      *model_.model, comm_, static_cast<int64_t>(config_.bucket_mb * 1024 * 1024));
}

CheckpointInfo TrainingRun::checkpoint_info() const {
  CheckpointInfo info;
  info.model = config_.model;
  info.options = config_.model_options;
  info.input_height = data_.shape.height;
  info.input_width = data_.shape.width;
  info.eval_resize = data_.eval_resize;
  info.mean = data_.stats.mean;
  info.std = data_.stats.std;
  info.class_names = data_.datasets.train->class_names();
  info.dataset = config_.data;
  info.init = model_.origin.file_name;
  info.init_sha256 = model_.origin.sha256;
  return info;
}

void TrainingRun::restore() {
  io::load_state_dict(*model_.model, files_.last());
  // A fine-tuned run's origin, as its first invocation recorded it.
  const CheckpointInfo last = read_checkpoint_info(files_.last());
  info_.init = last.init;
  info_.init_sha256 = last.init_sha256;
  io::SafetensorsFile s = io::read_safetensors(files_.state());
  check_checkpoint_pair(files_.pair(), io::read_safetensors(files_.last()).metadata, s.metadata);
  model_.sgd->load_state(s.tensors);
  if (model_.ema) model_.ema->load_state(s.tensors);
  state_ = parse_state(s.metadata, files_.state());
  rows_ = read_metrics(files_.metrics());
  rows_.resize(
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(rows_.size()), state_.epoch)));
  std::printf("resuming %s at epoch %lld, batch %lld (step %lld)\n", config_.out.c_str(),
              static_cast<long long>(state_.epoch + 1), static_cast<long long>(state_.next_batch),
              static_cast<long long>(state_.global_step));
}

void TrainingRun::start_fresh() {
  fs::create_directories(files_.dir);
  io::write_file_atomic(files_.config(), config_.to_json());
}

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

}  // namespace

TrainResult train(TrainConfig config, bool resume) {
  return train(std::move(config), resume, *dist::single_process());
}

TrainResult train(TrainConfig config, bool resume, dist::Communicator& comm) {
  TrainingRun run(std::move(config), resume, comm);
  return run.run();
}

}  // namespace resnet::train
