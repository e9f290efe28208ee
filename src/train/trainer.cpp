#include "resnet/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/data/loader.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/stats.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/nn/init.h"
#include "resnet/nn/resnet.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/lr_schedule_spec.h"
#include "resnet/train/plot_svg.h"
#include "resnet/train/progress.h"
#include "resnet/train/sgd.h"
#include "resnet/train/top_k.h"

namespace resnet::train {

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

namespace fs = std::filesystem;

struct EpochRow {
  int64_t epoch;
  double train_loss, train_acc, test_loss, test_acc, lr, seconds;
};

// Where a run stands; saved beside the last checkpoint so --resume continues exactly.
struct RunState {
  int64_t epoch = 0;        // the epoch in progress (or next to start)
  int64_t next_batch = 0;   // first batch of `epoch` not yet trained
  int64_t global_step = 0;  // optimizer steps taken
  double best_acc = -1.0;
  // Partial sums of the epoch in progress, so its metrics survive an interruption.
  double loss_sum = 0.0, seconds = 0.0;
  int64_t correct = 0, seen = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  RESNET_CHECK(in, path << ": cannot read (expected a file written by resnet train)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string metrics_csv(const std::vector<EpochRow>& rows) {
  std::ostringstream s;
  s.precision(8);
  s << "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n";
  for (const auto& r : rows)
    s << r.epoch << ',' << r.train_loss << ',' << r.train_acc << ',' << r.test_loss << ','
      << r.test_acc << ',' << r.lr << ',' << r.seconds << '\n';
  return s.str();
}

std::vector<EpochRow> read_metrics(const std::string& path) {
  std::vector<EpochRow> rows;
  std::ifstream in(path);
  if (!in) return rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochRow r{};
    char comma;
    std::istringstream s(line);
    s >> r.epoch >> comma >> r.train_loss >> comma >> r.train_acc >> comma >> r.test_loss >>
        comma >> r.test_acc >> comma >> r.lr >> comma >> r.seconds;
    RESNET_CHECK(!s.fail(), path << ": malformed row '" << line << "'");
    rows.push_back(r);
  }
  return rows;
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
          {"seen", std::to_string(s.seen)}};
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
  } catch (const std::logic_error&) {
    RESNET_FAIL(path << ": malformed training state");
  }
  return s;
}

struct Evaluation {
  double loss = 0.0, accuracy = 0.0;
};

Evaluation evaluate(nn::Module& model, data::DataLoader& loader) {
  model.eval();
  loader.start_epoch(0);
  double loss_sum = 0.0;
  int64_t correct = 0, count = 0;
  while (auto batch = loader.next()) {
    Tensor logits = model.forward(batch->images);
    std::span<const int64_t> labels(batch->labels.i64(), static_cast<size_t>(batch->size()));
    loss_sum += cross_entropy(logits, labels).loss * static_cast<double>(batch->size());
    correct += count_top_k_correct(logits, labels, 1);
    count += batch->size();
  }
  model.train();
  return {loss_sum / static_cast<double>(count),
          static_cast<double>(correct) / static_cast<double>(count)};
}

// Per conv weight: name and depth (order of appearance, which is forward order).
void record_grad_norms(nn::Module& model, int64_t step, std::ostream& out) {
  int64_t depth = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (p->value.rank() != 4) continue;
    double sq = 0.0;
    for (float g : std::as_const(p->grad).values()) sq += static_cast<double>(g) * g;
    out << step << ',' << name << ',' << depth++ << ',' << std::sqrt(sq) << '\n';
  }
}

}  // namespace

TrainResult train(TrainConfig config, bool resume) {
  const fs::path dir(config.out);
  const std::string config_path = (dir / "config.json").string();
  const std::string last_path = (dir / "last.safetensors").string();
  const std::string state_path = (dir / "last.state.safetensors").string();
  RunState state;
  if (resume) {
    RESNET_CHECK(fs::exists(last_path) && fs::exists(state_path),
                 "--resume: expected " << last_path << " and " << state_path
                                       << " from an earlier run, found none");
    // The run's own settings come back from config.json; this invocation may extend the
    // epochs and sets its own threads and step limit.
    const TrainConfig invocation = config;
    config = TrainConfig::from_json(read_text(config_path), config_path);
    config.epochs = std::max(config.epochs, invocation.epochs);
    config.threads = invocation.threads;
    config.max_steps = invocation.max_steps;
  }
  if (config.threads > 0) backend::set_num_threads(config.threads);
  RESNET_CHECK(config.epochs > 0 && config.batch > 0,
               "train: expected positive --epochs and --batch, got " << config.epochs << " and "
                                                                     << config.batch);

  data::DatasetPair data = data::open_dataset(config.data);
  const data::ImageShape shape = data.train->image_shape();
  config.model_options.in_channels = shape.channels;
  config.model_options.num_classes = data.train->num_classes();
  const data::ChannelStats stats = data::compute_channel_stats(*data.train, 20000);

  std::vector<std::shared_ptr<const data::Transform>> train_steps;
  if (config.crop_padding > 0)
    train_steps.push_back(
        std::make_shared<data::RandomCrop>(shape.height, shape.width, config.crop_padding));
  if (config.flip) train_steps.push_back(std::make_shared<data::RandomHorizontalFlip>(0.5));
  train_steps.push_back(std::make_shared<data::Normalize>(stats.mean, stats.std));
  if (config.erasing > 0)
    train_steps.push_back(std::make_shared<data::RandomErasing>(config.erasing));
  data::LoaderOptions train_options;
  train_options.batch_size = config.batch;
  train_options.seed = config.seed;
  train_options.transform = std::make_shared<data::Compose>(train_steps);
  data::DataLoader train_loader(data.train, train_options);
  data::LoaderOptions test_options;
  test_options.batch_size = config.eval_batch;
  test_options.shuffle = false;
  test_options.transform = std::make_shared<data::Normalize>(stats.mean, stats.std);
  data::DataLoader test_loader(data.test, test_options);

  nn::init::manual_seed(config.seed);
  nn::ModulePtr model = models::build(config.model, config.model_options);
  config.model_options = models::resolve_options(config.model, config.model_options);
  if (auto* net = dynamic_cast<nn::ResNet*>(model.get())) net->set_input_grad(false);
  model->train();

  SgdOptions sgd_options;
  sgd_options.lr = config.lr;
  sgd_options.momentum = config.momentum;
  sgd_options.nesterov = config.nesterov;
  sgd_options.weight_decay = config.weight_decay;
  sgd_options.decay_bn_and_bias = config.decay_bn_and_bias;
  Sgd sgd(*model, sgd_options);
  const int64_t batches = train_loader.batches_per_epoch();
  auto schedule =
      parse_lr_schedule(config.schedule, config.lr, config.epochs * batches, config.warmup_steps);

  CheckpointInfo info;
  info.model = config.model;
  info.options = config.model_options;
  info.input_height = shape.height;
  info.input_width = shape.width;
  info.mean = stats.mean;
  info.std = stats.std;
  info.class_names = data.train->class_names();
  info.dataset = config.data;

  std::vector<EpochRow> rows;
  if (resume) {
    io::load_state_dict(*model, last_path);
    io::SafetensorsFile s = io::read_safetensors(state_path);
    sgd.load_state(s.tensors);
    state = parse_state(s.metadata, state_path);
    rows = read_metrics((dir / "metrics.csv").string());
    rows.resize(
        static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(rows.size()), state.epoch)));
    std::printf("resuming %s at epoch %lld, batch %lld (step %lld)\n", config.out.c_str(),
                static_cast<long long>(state.epoch + 1), static_cast<long long>(state.next_batch),
                static_cast<long long>(state.global_step));
  } else {
    fs::create_directories(dir);
    io::write_file_atomic(config_path, config.to_json());
  }

  auto save = [&](const std::string& model_path, bool with_state) {
    info.epoch = state.epoch;
    io::save_state_dict(*model, model_path, info.to_metadata());
    if (with_state) io::write_safetensors(state_path, sgd.state_tensors(), state_metadata(state));
  };

  // Training loss and accuracy every kStepLogEvery steps, for curves finer than epochs.
  constexpr int64_t kStepLogEvery = 20;
  std::ofstream step_log(dir / "steps.csv", resume ? std::ios::app : std::ios::trunc);
  if (!resume) step_log << "step,epoch,train_loss,train_acc\n";
  double window_loss = 0.0;
  int64_t window_correct = 0, window_seen = 0;
  std::ofstream grad_norms;
  if (config.grad_norm_steps > 0 && state.global_step < config.grad_norm_steps) {
    grad_norms.open(dir / "grad_norms.csv", resume ? std::ios::app : std::ios::trunc);
    if (!resume) grad_norms << "step,layer,depth,norm\n";
  }

  Progress progress(isatty(STDOUT_FILENO) != 0, std::max<int64_t>(1, batches / 10));
  TrainResult result;
  int64_t steps_here = 0;
  stop_requested() = false;
  std::printf(
      "training %s on %s (%lld train / %lld test images, %s), %lld epochs of %lld batches, %d "
      "threads\n",
      config.model.c_str(), config.data.c_str(), static_cast<long long>(data.train->size()),
      static_cast<long long>(data.test->size()), shape.str().c_str(),
      static_cast<long long>(config.epochs), static_cast<long long>(batches),
      backend::num_threads());
  for (; state.epoch < config.epochs; ++state.epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    const double seconds_before = state.seconds;
    progress.start_epoch(state.epoch, config.epochs, batches, state.next_batch);
    train_loader.start_epoch(state.epoch, state.next_batch);
    double lr = schedule->lr_at(state.global_step);
    while (auto batch = train_loader.next()) {
      lr = schedule->lr_at(state.global_step);
      sgd.set_lr(lr);
      Tensor logits = model->forward(batch->images);
      std::span<const int64_t> labels(batch->labels.i64(), static_cast<size_t>(batch->size()));
      CrossEntropyResult ce = cross_entropy(logits, labels, config.label_smoothing);
      RESNET_CHECK(std::isfinite(ce.loss),
                   "train: loss is " << ce.loss << " at epoch " << state.epoch + 1 << ", batch "
                                     << batch->index + 1 << " (step " << state.global_step + 1
                                     << "); lower --lr or check the data");
      model->zero_grad();
      model->backward(ce.grad_logits);
      if (grad_norms.is_open() && state.global_step < config.grad_norm_steps)
        record_grad_norms(*model, state.global_step, grad_norms);
      sgd.step();
      ++state.global_step;
      ++steps_here;
      state.next_batch = batch->index + 1;
      const int64_t batch_correct = count_top_k_correct(logits, labels, 1);
      state.loss_sum += ce.loss * static_cast<double>(batch->size());
      state.correct += batch_correct;
      state.seen += batch->size();
      window_loss += ce.loss * static_cast<double>(batch->size());
      window_correct += batch_correct;
      window_seen += batch->size();
      if (state.global_step % kStepLogEvery == 0) {
        step_log << state.global_step << ',' << state.epoch + 1 << ','
                 << window_loss / static_cast<double>(window_seen) << ','
                 << static_cast<double>(window_correct) / static_cast<double>(window_seen) << '\n';
        step_log.flush();
        window_loss = 0.0;
        window_correct = window_seen = 0;
      }
      progress.update(batch->index, state.loss_sum / static_cast<double>(state.seen),
                      static_cast<double>(state.correct) / static_cast<double>(state.seen),
                      batch->size());
      if (stop_requested() || (config.max_steps > 0 && steps_here >= config.max_steps)) {
        state.seconds =
            seconds_before +
            std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        save(last_path, true);
        progress.finish_epoch("stopped at epoch " + std::to_string(state.epoch + 1) + ", batch " +
                              std::to_string(state.next_batch) + "; checkpoint saved in " +
                              config.out + " (continue with --resume)");
        result.interrupted = true;
        result.epochs_done = state.epoch;
        return result;
      }
    }
    Evaluation test = evaluate(*model, test_loader);
    const double seconds =
        seconds_before +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    rows.push_back({state.epoch + 1, state.loss_sum / static_cast<double>(state.seen),
                    static_cast<double>(state.correct) / static_cast<double>(state.seen), test.loss,
                    test.accuracy, lr, seconds});
    io::write_file_atomic((dir / "metrics.csv").string(), metrics_csv(rows));
    write_svg((dir / "curves.svg").string(), training_curves((dir / "metrics.csv").string()), 2);
    const bool best = test.accuracy > state.best_acc;
    if (best) state.best_acc = test.accuracy;
    // The state saved is that of the next epoch's start.
    RunState next = state;
    next.epoch = state.epoch + 1;
    next.next_batch = 0;
    next.loss_sum = next.seconds = 0.0;
    next.correct = next.seen = 0;
    std::swap(state, next);
    save(last_path, true);
    if (best) save((dir / "best.safetensors").string(), false);
    std::swap(state, next);
    char summary[256];
    std::snprintf(
        summary, sizeof summary,
        "epoch %lld/%lld: train loss %.4f acc %.4f | test loss %.4f acc %.4f%s | lr %.4g | %s",
        static_cast<long long>(state.epoch + 1), static_cast<long long>(config.epochs),
        rows.back().train_loss, rows.back().train_acc, test.loss, test.accuracy,
        best ? " (best)" : "", lr, format_duration(seconds).c_str());
    progress.finish_epoch(summary);
    result.last_test_acc = test.accuracy;
    state.next_batch = 0;
    state.loss_sum = state.seconds = 0.0;
    state.correct = state.seen = 0;
  }
  result.best_test_acc = state.best_acc;
  result.epochs_done = config.epochs;
  return result;
}

}  // namespace resnet::train
