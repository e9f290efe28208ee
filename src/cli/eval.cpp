// resnet eval: how well a trained checkpoint classifies a dataset's test split: top-1 and
// top-5 accuracy, mean cross-entropy, per-class accuracy and the confusion matrix.

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "inference.h"
#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/data/loader.h"
#include "resnet/data/open_dataset.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/top_k.h"

namespace resnet::cli {

namespace {

struct EvalArgs {
  std::string checkpoint, data, dtype;
  bool json = false;
  int64_t batch = 256;
  int threads = 0;
};

using train::load_trained_model;
using train::TrainedModel;

// "[ant, bee, cat]", the first ten names at most.
std::string join_names(const std::vector<std::string>& names) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < names.size() && i < 10; ++i) s << (i ? ", " : "") << names[i];
  if (names.size() > 10) s << ", ... (" << names.size() << " in all)";
  s << "]";
  return s.str();
}

// The dataset must feed the network what it was trained on; a mismatch is how a checkpoint
// of another model (or a dataset of another kind) shows.
void check_compatible(const data::Dataset& test, const TrainedModel& t, const EvalArgs& a) {
  const train::CheckpointInfo& info = t.info;
  const data::ImageShape got = test.image_shape();
  data::ImageShape want{info.options.in_channels, info.input_height, info.input_width};
  // No size recorded, or a crop of images of any size: the images may have any size.
  if (info.input_height == 0 || info.input_width == 0 || info.eval_resize > 0) {
    want.height = got.height;
    want.width = got.width;
  }
  RESNET_CHECK(got == want, "--data " << a.data << ": expected " << want.str()
                                      << " images (channels x height x width) as checkpoint "
                                      << a.checkpoint << " (" << info.model << ", in_channels "
                                      << info.options.in_channels << ", input_size "
                                      << info.input_height << "x" << info.input_width
                                      << ") takes, got " << got.str() << " in " << test.name());
  RESNET_CHECK(test.num_classes() == info.options.num_classes,
               "--data " << a.data << ": expected " << info.options.num_classes
                         << " classes as checkpoint " << a.checkpoint << " has, got "
                         << test.num_classes() << " in " << test.name());
  // Same count but other names (another image folder, say) would make every number wrong
  // without a sign of it.
  RESNET_CHECK(test.class_names() == info.class_names,
               "--data " << a.data << ": expected the classes " << join_names(info.class_names)
                         << " of checkpoint " << a.checkpoint << ", got "
                         << join_names(test.class_names()) << " in " << test.name());
}

struct Tally {
  int64_t count = 0, top1 = 0, topk = 0;
  double loss_sum = 0;             // sum over samples of the per-batch mean times its size
  std::vector<int64_t> confusion;  // [true class][predicted class], row-major
};

// The predicted class of each row: the largest logit, ties to the lower index (as
// torch.argmax and top_k_correct's ranking).
int64_t argmax_row(const float* row, int64_t classes) {
  int64_t best = 0;
  for (int64_t j = 1; j < classes; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

Tally evaluate(const Forward& forward, std::shared_ptr<const data::Dataset> test,
               const train::CheckpointInfo& info, int64_t batch_size, int64_t k) {
  const int64_t classes = info.options.num_classes;
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  train::set_eval_transforms(info, options);
  data::DataLoader loader(std::move(test), options);
  Tally tally;
  tally.confusion.assign(static_cast<size_t>(classes * classes), 0);
  loader.start_epoch(0);
  while (std::optional<data::Batch> batch = loader.next()) {
    const Tensor logits = forward(batch->images);
    RESNET_CHECK(logits.rank() == 2 && logits.dim(0) == batch->size() && logits.dim(1) == classes,
                 info.model << ": expected logits [" << batch->size() << ", " << classes
                            << "], got " << logits.shape_str());
    const std::span<const int64_t> labels(batch->labels.i64(),
                                          static_cast<size_t>(batch->labels.numel()));
    tally.loss_sum +=
        train::cross_entropy(logits, labels).loss * static_cast<double>(batch->size());
    tally.top1 += train::count_top_k_correct(logits, labels, 1);
    tally.topk += train::count_top_k_correct(logits, labels, k);
    for (int64_t i = 0; i < batch->size(); ++i) {
      const int64_t predicted = argmax_row(logits.f32() + i * classes, classes);
      ++tally.confusion[static_cast<size_t>(labels[i] * classes + predicted)];
    }
    tally.count += batch->size();
  }
  return tally;
}

double fraction(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

// Rows are labelled with class names; columns too when the names are short and few, else
// with class indices (and the rows with "index name"), so that ten Fashion-MNIST classes
// still fit a terminal.
std::string confusion_table(const std::vector<int64_t>& confusion,
                            const std::vector<std::string>& names) {
  const size_t classes = names.size();
  size_t longest = 0;
  for (const std::string& n : names) longest = std::max(longest, n.size());
  const bool named_columns = classes <= 20 && longest <= 8;
  std::vector<std::string> col_head(classes), row_head(classes);
  for (size_t c = 0; c < classes; ++c) {
    col_head[c] = named_columns ? names[c] : std::to_string(c);
    std::ostringstream r;
    if (!named_columns)
      r << std::setw(static_cast<int>(std::to_string(classes - 1).size())) << c << " ";
    r << names[c];
    row_head[c] = r.str();
  }
  size_t row_width = std::string("true\\pred").size();
  for (const std::string& r : row_head) row_width = std::max(row_width, r.size());
  std::vector<size_t> col_width(classes);
  for (size_t c = 0; c < classes; ++c) {
    col_width[c] = col_head[c].size();
    for (size_t r = 0; r < classes; ++r) {
      col_width[c] = std::max(col_width[c], std::to_string(confusion[r * classes + c]).size());
    }
  }
  std::ostringstream t;
  t << "  " << std::left << std::setw(static_cast<int>(row_width)) << "true\\pred" << std::right;
  for (size_t c = 0; c < classes; ++c) {
    t << "  " << std::setw(static_cast<int>(col_width[c])) << col_head[c];
  }
  t << "\n";
  for (size_t r = 0; r < classes; ++r) {
    t << "  " << std::left << std::setw(static_cast<int>(row_width)) << row_head[r] << std::right;
    for (size_t c = 0; c < classes; ++c) {
      t << "  " << std::setw(static_cast<int>(col_width[c])) << confusion[r * classes + c];
    }
    t << "\n";
  }
  return t.str();
}

void report_text(const Tally& t, const TrainedModel& m, const data::Dataset& test,
                 const EvalArgs& a, int64_t k) {
  const std::vector<std::string>& names = m.info.class_names;
  const size_t classes = names.size();
  std::ostringstream o;
  o << std::fixed << std::setprecision(4);
  o << "checkpoint " << a.checkpoint << " (" << m.info.model << ", epoch " << m.info.epoch << ")\n";
  o << "data       " << test.name() << ": " << t.count << " images\n";
  o << "precision  " << a.dtype << "\n";
  o << "top-1      " << fraction(t.top1, t.count) << " (" << t.top1 << " of " << t.count << ")\n";
  o << "top-" << k << std::string(k < 10 ? 6 : 5, ' ') << fraction(t.topk, t.count) << " ("
    << t.topk << " of " << t.count << ")\n";
  o << "loss       " << t.loss_sum / static_cast<double>(std::max<int64_t>(t.count, 1)) << "\n";

  size_t longest = std::string("class").size();
  for (const std::string& n : names) longest = std::max(longest, n.size());
  const int w = static_cast<int>(longest);
  o << "\nper-class accuracy\n";
  o << "  " << std::left << std::setw(w) << "class" << std::right << "  accuracy  correct  "
    << "  count\n";
  for (size_t c = 0; c < classes; ++c) {
    int64_t total = 0;
    for (size_t j = 0; j < classes; ++j) total += t.confusion[c * classes + j];
    const int64_t correct = t.confusion[c * classes + c];
    o << "  " << std::left << std::setw(w) << names[c] << std::right << "  " << std::setw(8);
    if (total > 0)
      o << fraction(correct, total);
    else
      o << "-";
    o << "  " << std::setw(7) << correct << "  " << std::setw(7) << total << "\n";
  }
  o << "\nconfusion matrix (rows: true class, columns: predicted class)\n";
  o << confusion_table(t.confusion, names);
  std::cout << o.str();
}

void report_json(const Tally& t, const TrainedModel& m, const data::Dataset& test,
                 const EvalArgs& a, int64_t k) {
  const std::vector<std::string>& names = m.info.class_names;
  const size_t classes = names.size();
  nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
  nlohmann::ordered_json class_count = nlohmann::ordered_json::object();
  nlohmann::ordered_json confusion = nlohmann::ordered_json::array();
  for (size_t c = 0; c < classes; ++c) {
    int64_t total = 0;
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (size_t j = 0; j < classes; ++j) {
      total += t.confusion[c * classes + j];
      row.push_back(t.confusion[c * classes + j]);
    }
    confusion.push_back(row);
    // A class absent from the test split has no accuracy: null, not a made-up 0.
    per_class[names[c]] =
        total > 0 ? nlohmann::ordered_json(fraction(t.confusion[c * classes + c], total))
                  : nlohmann::ordered_json(nullptr);
    class_count[names[c]] = total;
  }
  nlohmann::ordered_json j = {
      {"checkpoint", a.checkpoint},
      {"model", m.info.model},
      {"epoch", m.info.epoch},
      {"data", a.data},
      {"dtype", a.dtype},
      {"split", test.name()},
      {"count", t.count},
      {"top1", fraction(t.top1, t.count)},
      {"top5", fraction(t.topk, t.count)},
      {"top5_k", k},
      {"loss", t.loss_sum / static_cast<double>(std::max<int64_t>(t.count, 1))},
      {"per_class", per_class},
      {"per_class_count", class_count},
      {"class_names", names},
      {"confusion", confusion}};
  std::cout << j.dump() << "\n";
}

void run_eval(const EvalArgs& a) {
  if (a.threads > 0) backend::set_num_threads(a.threads);
  TrainedModel m = load_trained_model(a.checkpoint);
  const std::shared_ptr<const data::Dataset> test = data::open_dataset(a.data).test;
  check_compatible(*test, m, a);
  // Top-5 needs five classes; with fewer, top-K over all K classes is what is reported.
  const int64_t k = std::min<int64_t>(5, m.info.options.num_classes);
  // A quantized checkpoint evaluates in int8 unless told otherwise.
  std::string dtype = a.dtype.empty() ? (m.int8_calibration.empty() ? "f32" : "int8") : a.dtype;
  std::shared_ptr<const infer::Calibration> calibration;
  if (!m.int8_calibration.empty())
    calibration = std::make_shared<infer::Calibration>(
        infer::Calibration::from_json(m.int8_calibration, a.checkpoint));
  const Tally t = evaluate(make_forward(*m.module, dtype, calibration), test, m.info, a.batch, k);
  EvalArgs used = a;
  used.dtype = dtype;
  if (a.json)
    report_json(t, m, *test, used, k);
  else
    report_text(t, m, *test, used, k);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Accuracy, loss, per-class accuracy and confusion matrix of a trained checkpoint");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--checkpoint", a->checkpoint,
                  "A checkpoint written by resnet train (.safetensors)")
      ->required();
  std::string spec_help = data::dataset_spec_help();
  while (!spec_help.empty() && spec_help.back() == '\n') spec_help.pop_back();
  cmd->add_option("--data", a->data, "Dataset spec; its test split is evaluated:\n" + spec_help)
      ->required();
  cmd->add_flag("--json", a->json,
                "Print one JSON object (top1, top5, loss, count, per_class, confusion)");
  cmd->add_option("--dtype", a->dtype,
                  "Precision: f32 (the training path), bf16 or int8 (compiled graph); default "
                  "int8 for a quantized checkpoint, else f32")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_option("--batch", a->batch, "Images per forward pass (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::PositiveNumber);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace resnet::cli
