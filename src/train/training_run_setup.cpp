// A training run's set-up: its configuration (checked, or read back by --resume), the data
// and model, and where it starts (a fresh output directory or the last checkpoint).

#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "replica_state.h"
#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/dist/replicas.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "training_run.h"

namespace resnet::train {

namespace {

namespace fs = std::filesystem;

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

}  // namespace

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

}  // namespace resnet::train
