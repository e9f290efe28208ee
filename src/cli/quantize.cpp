// resnet quantize: post-training int8 quantization of a trained checkpoint. Calibrates
// every activation's range on training images, measures how often int8 agrees with f32
// on the test split, and writes the checkpoint again with the ranges in its metadata, so
// that eval, predict and bench run it in int8.

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "inference.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/data/loader.h"
#include "resnet/data/open_dataset.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/checkpoint.h"
#include "resnet/train/checkpoint_info.h"

namespace resnet::cli {

namespace {

struct QuantizeArgs {
  std::string model, data, out;
  int64_t calibration_images = 2000, batch = 256;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false;
};

int64_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (row[j] > row[best]) best = j;
  return best;
}

void run_quantize(const QuantizeArgs& a) {
  if (a.threads > 0) backend::set_num_threads(a.threads);
  train::TrainedModel m = train::load_trained_model(a.model);
  data::DatasetPair datasets = data::open_dataset(a.data);
  RESNET_CHECK(datasets.test->num_classes() == m.info.options.num_classes,
               "--data " << a.data << ": expected " << m.info.options.num_classes
                         << " classes as checkpoint " << a.model << " has, got "
                         << datasets.test->num_classes());

  // Calibration: a seeded random sample of the training split, preprocessed as evaluation.
  infer::Calibrator calibrator(infer::lower_module(*m.module));
  {
    data::LoaderOptions o;
    o.batch_size = std::min(a.batch, a.calibration_images);
    o.shuffle = true;
    o.seed = a.seed;
    train::set_eval_transforms(m.info, o);
    data::DataLoader loader(datasets.train, o);
    loader.start_epoch(0);
    while (calibrator.result().images < a.calibration_images) {
      std::optional<data::Batch> batch = loader.next();
      if (!batch) break;
      calibrator.observe(batch->images);
    }
  }
  auto calibration = std::make_shared<infer::Calibration>(calibrator.result());

  // Agreement on the test split: the f32 training path against the int8 graph.
  Forward f32 = make_forward(*m.module, "f32");
  Forward int8 = make_forward(*m.module, "int8", calibration);
  data::LoaderOptions o;
  o.batch_size = a.batch;
  o.shuffle = false;
  train::set_eval_transforms(m.info, o);
  data::DataLoader loader(datasets.test, o);
  loader.start_epoch(0);
  int64_t count = 0, agree = 0, correct_f32 = 0, correct_int8 = 0;
  const int64_t classes = m.info.options.num_classes;
  while (std::optional<data::Batch> batch = loader.next()) {
    const Tensor y32 = f32(batch->images), y8 = int8(batch->images);
    for (int64_t i = 0; i < batch->size(); ++i) {
      const int64_t p32 = argmax(y32.f32() + i * classes, classes);
      const int64_t p8 = argmax(y8.f32() + i * classes, classes);
      const int64_t label = batch->labels.i64()[i];
      agree += p32 == p8;
      correct_f32 += p32 == label;
      correct_int8 += p8 == label;
    }
    count += batch->size();
  }

  std::map<std::string, std::string> metadata = m.info.to_metadata();
  metadata["int8_calibration"] = calibration->to_json();
  io::save_state_dict(*m.module, a.out, metadata);

  const double n = static_cast<double>(std::max<int64_t>(count, 1));
  if (a.json) {
    nlohmann::ordered_json j = {{"checkpoint", a.model},
                                {"out", a.out},
                                {"calibration_images", calibration->images},
                                {"test_images", count},
                                {"top1_f32", correct_f32 / n},
                                {"top1_int8", correct_int8 / n},
                                {"top1_agreement", agree / n},
                                {"vnni", backend::cpu_has_vnni()}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("calibrated on %lld training images of %s\n",
                static_cast<long long>(calibration->images), a.data.c_str());
    std::printf("test split: %lld images\n", static_cast<long long>(count));
    std::printf("top-1 f32   %.4f\ntop-1 int8  %.4f  (%+.2f points)\n", correct_f32 / n,
                correct_int8 / n, 100.0 * (correct_int8 - correct_f32) / n);
    std::printf("top-1 agreement int8 vs f32  %.4f (%lld of %lld)\n", agree / n,
                static_cast<long long>(agree), static_cast<long long>(count));
    std::printf("wrote %s\n", a.out.c_str());
  }
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize", "Post-training int8 quantization of a trained checkpoint, calibrated on data");
  auto a = std::make_shared<QuantizeArgs>();
  cmd->add_option("--model", a->model, "A checkpoint written by resnet train (.safetensors)")
      ->required();
  std::string spec_help = data::dataset_spec_help();
  while (!spec_help.empty() && spec_help.back() == '\n') spec_help.pop_back();
  cmd->add_option("--data", a->data,
                  "Dataset spec: calibration uses its training split, the agreement report "
                  "its test split:\n" +
                      spec_help)
      ->required();
  cmd->add_option("--out", a->out, "The quantized checkpoint to write (.safetensors)")->required();
  cmd->add_option("--calibration-images", a->calibration_images,
                  "Training images to calibrate on (default 2000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "Images per forward pass (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed of the calibration sample (default 0)");
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->json,
                "Print one JSON object (top1_f32, top1_int8, top1_agreement, ...)");
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace resnet::cli
