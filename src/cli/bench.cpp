// resnet bench: times forward (infer) or forward + backward (train) passes of a model
// on synthetic input and reports latency percentiles and throughput; or (data) the
// training data pipeline alone on a dataset: decode, crop, resize, flip, normalize and
// batch assembly by the loader's workers.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "model_loading.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/backend/threads.h"
#include "resnet/core/error.h"
#include "resnet/core/fma_peak.h"
#include "resnet/data/loader.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/pipeline.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compile_chain.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/nn/freeze.h"
#include "resnet/nn/init.h"
#include "resnet/nn/precision.h"
#include "resnet/nn/resnet.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/sgd.h"

namespace resnet::cli {

namespace {
struct BenchArgs {
  std::string model, weights, mode = "infer", dtype = "f32", layout = "auto", data;
  std::string freeze;  // --mode train: modules to freeze (nn/freeze.h)
  int64_t batch = 1, size = 224, iters = 20, warmup = 3, workers = 2;
  bool reduced_decode = true;
  int threads = 0;
  bool json = false;
  models::ModelOptions options;
  bool in_channels_set = false;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

infer::Precision precision_of(const std::string& dtype) {
  if (dtype == "bf16") return infer::Precision::bf16;
  if (dtype == "int8") return infer::Precision::int8;
  return infer::Precision::f32;
}

// CPU seconds the process has used, all its threads together.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

int64_t peak_rss_bytes() {
  // The process's resident high-water mark, as /usr/bin/time reports it.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// The training transforms of `resnet train` on --data at --size (ImageNet normalization),
// --workers threads, --warmup untimed batches then --iters timed ones (epochs wrap).
void bench_data(const BenchArgs& a) {
  RESNET_CHECK(!a.data.empty(), "--mode data: expected --data SPEC, got none");
  data::OpenOptions open;
  open.test_optional = true;
  std::shared_ptr<const data::Dataset> train = data::open_dataset(a.data, open).train;
  data::PipelineOptions p;
  p.size = a.size;
  p.reduced_decode = a.reduced_decode;
  const int64_t channels = train->image_shape().channels;
  p.mean = channels == 3 ? data::imagenet_mean() : std::vector<float>{0.5f};
  p.std = channels == 3 ? data::imagenet_std() : std::vector<float>{0.25f};
  const data::Pipeline pipeline = data::make_pipeline(*train, p);
  data::LoaderOptions o;
  o.batch_size = a.batch;
  o.seed = 1;
  o.workers = a.workers;
  o.prefetch = std::max<int64_t>(2, a.workers);
  o.sample_transform = pipeline.train_sample;
  o.transform = pipeline.train;
  data::DataLoader loader(train, o);
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  auto next_batch = [&] {
    std::optional<data::Batch> b = loader.next();
    if (!b) {
      loader.start_epoch(++epoch);
      b = loader.next();
    }
    return b->size();
  };
  for (int64_t i = 0; i < a.warmup; ++i) next_batch();
  int64_t images = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  for (int64_t i = 0; i < a.iters; ++i) images += next_batch();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Less sensitive than the wall time to other processes on a busy machine.
  const double cpu_ms_per_image = 1000.0 * (cpu_seconds() - cpu0) / static_cast<double>(images);
  const data::ImageShape shape = loader.sample_shape();
  const double images_per_s = static_cast<double>(images) / seconds;
  if (a.json) {
    nlohmann::ordered_json j = {{"mode", "data"},
                                {"data", a.data},
                                {"examples", train->size()},
                                {"batch", a.batch},
                                {"size", shape.height},
                                {"workers", a.workers},
                                {"reduced_decode", a.reduced_decode},
                                {"iters", a.iters},
                                {"images", images},
                                {"seconds", seconds},
                                {"images_per_s", images_per_s},
                                {"cpu_ms_per_image", cpu_ms_per_image},
                                {"peak_rss_bytes", peak_rss_bytes()}};
    std::cout << j.dump() << "\n";
    return;
  }
  std::printf("data %s (%lld examples): batches of %lld, %s, %lld workers\n", a.data.c_str(),
              static_cast<long long>(train->size()), static_cast<long long>(a.batch),
              shape.str().c_str(), static_cast<long long>(a.workers));
  std::printf("%lld images in %.3f s: %.1f images/s, %.2f ms of CPU time per image\n",
              static_cast<long long>(images), seconds, images_per_s, cpu_ms_per_image);
  std::printf("peak RSS %.1f MiB\n", static_cast<double>(peak_rss_bytes()) / (1 << 20));
}

void bench(BenchArgs a) {
  if (a.threads > 0) backend::set_num_threads(a.threads);
  if (a.mode == "data") {
    bench_data(a);
    return;
  }
  RESNET_CHECK(!a.model.empty(), "--mode " << a.mode << ": expected --model, got none");
  const bool train = a.mode == "train";
  RESNET_CHECK(train || a.freeze.empty(), "--freeze " << a.freeze << ": expected --mode train");
  InferenceModel m = load_inference_model(a.model, a.weights, a.options);
  RESNET_CHECK(!train || m.module != nullptr,
               "--mode train: " << a.model << " is an ONNX file, which has no training path");
  const int64_t channels = m.in_channels;
  RESNET_CHECK(!a.in_channels_set || a.options.in_channels == channels,
               "--in-channels: model " << m.name << " expects " << channels
                                       << " input channels, got " << a.options.in_channels);
  Tensor x({a.batch, channels, a.size, a.size});
  nn::init::manual_seed(1);
  nn::init::uniform_(x, -1.f, 1.f);
  infer::Graph graph = std::move(m.graph);
  graph.infer_shapes(x.shape());
  const int64_t forward_macs = infer::count_macs(graph);

  // Inference runs the compiled graph (BN folded, post-ops fused, blocked layouts);
  // training runs the module tree: forward, cross-entropy, backward and the SGD update.
  std::unique_ptr<infer::CompiledModel> compiled;
  std::unique_ptr<train::Sgd> sgd;
  std::vector<int64_t> labels;
  int64_t macs = forward_macs;
  if (!train) {
    infer::CompileOptions options;
    options.precision = precision_of(a.dtype);
    options.layout = a.layout == "blocked"  ? infer::LayoutChoice::blocked
                     : a.layout == "native" ? infer::LayoutChoice::native
                                            : infer::LayoutChoice::automatic;
    if (options.precision == infer::Precision::int8) {
      // A quantized checkpoint carries its calibration; a plain model is calibrated on the
      // benchmark's own input, which times the same work.
      options.calibration = m.calibration;
      if (!options.calibration) {
        infer::Calibrator calibrator(graph);
        calibrator.observe(x);
        options.calibration = std::make_shared<infer::Calibration>(calibrator.result());
      }
    }
    compiled = std::make_unique<infer::CompiledModel>(std::move(graph), options);
    if (!compiled->fallback_note().empty()) std::cerr << compiled->fallback_note() << "\n";
  } else {
    RESNET_CHECK(a.dtype == "f32" || a.dtype == "bf16",
                 "--dtype " << a.dtype << ": training runs in f32 or bf16");
    m.module->train(true);
    if (a.dtype == "bf16") {
      const std::string note = backend::bf16_fallback_note();
      if (note.empty())
        nn::set_conv_compute_type(*m.module, DType::bf16);
      else
        std::cerr << note << "\n";
    }
    // Like a training step in PyTorch, where the input does not require a gradient.
    // The frozen prefix (if any) runs compiled, as inference does.
    if (auto* net = dynamic_cast<nn::ResNet*>(m.module.get())) {
      net->set_input_grad(false);
      net->set_prefix_compiler(infer::compile_chain);
    }
    nn::freeze(*m.module, a.freeze);
    train::SgdOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    sgd = std::make_unique<train::Sgd>(*m.module, o);
    for (int64_t i = 0; i < a.batch; ++i) labels.push_back(i % std::max<int64_t>(m.num_classes, 1));
    macs = 3 * forward_macs;  // forward, backward-data, backward-weights
  }
  auto step = [&] {
    if (!train) {
      compiled->run(x);
      return;
    }
    sgd->zero_grad();
    Tensor y = m.module->forward(x);
    if (y.rank() == 2) {
      m.module->backward(train::cross_entropy(y, labels).grad_logits);
    } else {
      // A lone block has no classes: the gradient of the output's mean.
      m.module->backward(Tensor::full(y.shape(), 1.f / static_cast<float>(y.numel())));
    }
    sgd->step();
  };
  for (int64_t i = 0; i < a.warmup; ++i) step();
  std::vector<double> ms;
  for (int64_t i = 0; i < a.iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double p50 = percentile(ms, 0.5), p90 = percentile(ms, 0.9);
  const double images_per_s = static_cast<double>(a.batch) * 1000.0 / p50;
  const double gflops = 2.0 * static_cast<double>(macs) / (p50 * 1e-3) * 1e-9;
  const double peak = measure_fma_peak_gflops(backend::num_threads());
  // Libraries, weights, activations and gradients together.
  const int64_t peak_rss = peak_rss_bytes();
  if (a.json) {
    nlohmann::ordered_json j = {
        {"model", m.name},
        {"mode", a.mode},
        {"dtype", a.dtype},
        {"batch", a.batch},
        {"in_channels", channels},
        {"size", a.size},
        {"threads", backend::num_threads()},
        {"iters", a.iters},
        {"latency_ms_p50", p50},
        {"latency_ms_p90", p90},
        {"images_per_s", images_per_s},
        {"gmacs_per_image", static_cast<double>(macs) * 1e-9 / static_cast<double>(a.batch)},
        {"gflops", gflops},
        {"fp32_fma_peak_gflops", peak},
        {"fraction_of_fp32_peak", gflops / peak},
        {"peak_rss_bytes", peak_rss}};
    if (compiled) {
      const infer::CompiledModel::MemoryStats mem = compiled->memory_stats();
      j["activation_buffer_bytes"] = mem.buffer_bytes;
      j["activation_bytes"] = mem.activation_bytes;
    }
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s %s batch %lld, %lldx%lldx%lld, %d threads, %lld iterations\n", m.name.c_str(),
                a.mode.c_str(), static_cast<long long>(a.batch), static_cast<long long>(channels),
                static_cast<long long>(a.size), static_cast<long long>(a.size),
                backend::num_threads(), static_cast<long long>(a.iters));
    std::printf("latency p50 %.3f ms, p90 %.3f ms, %.1f images/s\n", p50, p90, images_per_s);
    std::printf("%.1f GFLOPS (%s), %.0f%% of the f32 FMA peak measured here (%.1f GFLOPS)\n",
                gflops, a.dtype.c_str(), 100.0 * gflops / peak, peak);
    std::printf("peak RSS %.1f MiB\n", static_cast<double>(peak_rss) / (1 << 20));
    if (compiled) {
      const infer::CompiledModel::MemoryStats mem = compiled->memory_stats();
      std::printf("activations: at most %.1f MiB live at once, of %.1f MiB per run\n",
                  static_cast<double>(mem.buffer_bytes) / (1 << 20),
                  static_cast<double>(mem.activation_bytes) / (1 << 20));
    }
  }
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Time inference (compiled graph), a full training step (forward, loss, backward, SGD) or "
      "the training data pipeline");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--model", a->model,
                  "Zoo name, .safetensors checkpoint or .onnx file (not for --mode data)");
  cmd->add_option("--weights", a->weights, "state_dict as .safetensors");
  cmd->add_option("--mode", a->mode, "infer, train or data")
      ->check(CLI::IsMember({"infer", "train", "data"}));
  cmd->add_option("--data", a->data,
                  "--mode data: the dataset spec whose training split is read (folder:DIR)");
  cmd->add_option("--workers", a->workers, "--mode data: loader threads")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--reduced-decode", a->reduced_decode,
                  "--mode data: decode JPEGs at 1/2, 1/4 or 1/8 when the crop allows (true/false)");
  cmd->add_option("--freeze", a->freeze,
                  "--mode train: freeze these modules (as resnet train --freeze); the GFLOP/s "
                  "figure still counts the full backward");
  cmd->add_option("--dtype", a->dtype,
                  "Precision: f32, bf16 or int8 (--mode train: f32 or bf16 mixed precision)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_option("--layout", a->layout,
                  "Activation layout between convolutions: auto, blocked (nChw16c) or native "
                  "(oneDNN's choice, NHWC)")
      ->check(CLI::IsMember({"auto", "blocked", "native"}));
  cmd->add_option("--batch", a->batch, "Batch size (--mode data: 32 unless given)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--size", a->size, "Input height and width (--mode data: the crop side)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--iters", a->iters, "Timed iterations")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed iterations first")->check(CLI::NonNegativeNumber);
  add_model_options(cmd, a->options);
  cmd->add_flag("--json", a->json, "Print one JSON line");
  cmd->callback([a, cmd] {
    BenchArgs args = *a;
    args.in_channels_set = cmd->count("--in-channels") > 0;
    if (args.mode == "data" && cmd->count("--batch") == 0) args.batch = 32;
    bench(args);
  });
}

}  // namespace resnet::cli
