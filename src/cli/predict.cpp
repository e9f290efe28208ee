// resnet predict: the most likely classes of image files under a trained checkpoint.

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/transforms.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/checkpoint_info.h"

namespace resnet::cli {

namespace {

struct PredictArgs {
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top_k = 0;  // 0: min(5, classes)
  bool json = false;
};

// How an image file becomes the network's input. A checkpoint of ours records its input
// size and normalization, so the recipe is: decode to its channels, resize (bilinear) to its
// input size when the file differs, scale to [0, 1], normalize. This is the seam for other
// recipes: ImageNet-style models (ONNX imports) want resize-256 then center-crop-224 instead,
// which becomes another Preprocessing mode chosen where the model is loaded.
struct Preprocessing {
  int64_t channels = 3;
  int64_t height = 0, width = 0;  // 0: keep the image's own size
  std::vector<float> mean, std;
};

Preprocessing preprocessing_for(const train::CheckpointInfo& info) {
  return {info.options.in_channels, info.input_height, info.input_width, info.mean, info.std};
}

// [1, C, H, W] f32, ready for the network.
Tensor load_input(const std::string& path, const Preprocessing& p) {
  data::ImageInfo header;
  const std::vector<uint8_t> bytes = data::decode_image(path, p.channels, &header);
  const data::ImageShape from{p.channels, header.height, header.width};
  RESNET_CHECK(static_cast<int64_t>(bytes.size()) == from.numel(),
               path << ": expected " << from.numel() << " decoded bytes (" << from.str()
                    << "), got " << bytes.size());
  Tensor image(from.shape());
  data::bytes_to_unit_floats(bytes.data(), from.numel(), image.f32());
  const int64_t h = p.height > 0 ? p.height : from.height;
  const int64_t w = p.width > 0 ? p.width : from.width;
  if (h != from.height || w != from.width) {
    Tensor resized({p.channels, h, w});
    data::resize_bilinear(image.f32(), from, resized.f32(), h, w);
    image = resized;
  }
  data::normalize(image, p.mean, p.std);
  return image.reshape({1, p.channels, h, w});
}

using train::load_trained_model;
using train::TrainedModel;

// Softmax of one row of logits, in double with the maximum subtracted.
std::vector<double> softmax(const float* logits, int64_t classes) {
  const double top = *std::max_element(logits, logits + classes);
  std::vector<double> p(static_cast<size_t>(classes));
  double sum = 0;
  for (int64_t j = 0; j < classes; ++j)
    sum += p[j] = std::exp(static_cast<double>(logits[j]) - top);
  for (double& v : p) v /= sum;
  return p;
}

// The k most probable classes, most probable first, ties to the lower index.
std::vector<int64_t> top_classes(const std::vector<double>& p, int64_t k) {
  std::vector<int64_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  order.resize(static_cast<size_t>(k));
  return order;
}

void run_predict(const PredictArgs& a) {
  TrainedModel m = load_trained_model(a.checkpoint);
  const int64_t classes = m.info.options.num_classes;
  const int64_t k = a.top_k > 0 ? a.top_k : std::min<int64_t>(5, classes);
  RESNET_CHECK(k <= classes, "--top-k: expected at most " << classes << " (the classes of "
                                                          << a.checkpoint << "), got " << k);
  const Preprocessing prep = preprocessing_for(m.info);
  const std::vector<std::string>& names = m.info.class_names;

  // Every image is read before anything is printed, so a bad file fails the command
  // without leaving half a report.
  nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
  std::ostringstream text;
  text << std::fixed << std::setprecision(4);
  for (const std::string& path : a.images) {
    const Tensor logits = m.module->forward(load_input(path, prep));
    RESNET_CHECK(
        logits.rank() == 2 && logits.dim(0) == 1 && logits.dim(1) == classes,
        m.info.model << ": expected logits [1, " << classes << "], got " << logits.shape_str());
    const std::vector<double> p = softmax(logits.f32(), classes);
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    text << path << "\n";
    for (int64_t c : top_classes(p, k)) {
      top.push_back({{"class", names[c]}, {"index", c}, {"probability", p[c]}});
      text << "  " << p[c] << "  " << names[c] << "\n";
    }
    predictions.push_back({{"image", path}, {"top", top}});
  }
  if (a.json) {
    nlohmann::ordered_json j = {{"checkpoint", a.checkpoint},
                                {"model", m.info.model},
                                {"top_k", k},
                                {"predictions", predictions}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << text.str();
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict", "Most likely classes of PNG/JPEG images under a trained checkpoint");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("--checkpoint", a->checkpoint,
                  "A checkpoint written by resnet train (.safetensors)")
      ->required();
  cmd->add_option("IMAGE", a->images, "PNG or JPEG files")->required();
  cmd->add_option("--top-k", a->top_k, "Classes to print per image (default: 5, or all when fewer)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([a] { run_predict(*a); });
}

}  // namespace resnet::cli
