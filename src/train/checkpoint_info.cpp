#include "resnet/train/checkpoint_info.h"

#include <charconv>
#include <sstream>

#include <nlohmann/json.hpp>

#include "resnet/core/error.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"

namespace resnet::train {

namespace {

const char* kFormat = "resnet-checkpoint-1";

std::string join(const std::vector<float>& v) {
  std::ostringstream s;
  s.precision(9);
  for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}

const std::string& require(const std::map<std::string, std::string>& m, const std::string& key,
                           const std::string& path) {
  auto it = m.find(key);
  RESNET_CHECK(it != m.end(), path << ": expected a checkpoint of ours with metadata '" << key
                                   << "'; for a bare state_dict use --model NAME --weights "
                                   << path);
  return it->second;
}

int64_t to_int(const std::string& text, const std::string& path, const std::string& key) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  RESNET_CHECK(
      ec == std::errc() && ptr == text.data() + text.size() && v >= 0,
      path << ": metadata '" << key << "': expected a non-negative integer, got '" << text << "'");
  return v;
}

std::vector<float> to_floats(const std::string& text, const std::string& path,
                             const std::string& key) {
  std::vector<float> out;
  std::stringstream s(text);
  for (std::string item; std::getline(s, item, ',');) {
    try {
      size_t used = 0;
      out.push_back(std::stof(item, &used));
      RESNET_CHECK(used == item.size(), "");
    } catch (const std::exception&) {
      RESNET_FAIL(path << ": metadata '" << key << "': expected comma-separated numbers, got '"
                       << text << "'");
    }
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> CheckpointInfo::to_metadata() const {
  std::map<std::string, std::string> m = {
      {"format", kFormat},
      {"model", model},
      {"num_classes", std::to_string(options.num_classes)},
      {"in_channels", std::to_string(options.in_channels)},
      {"shortcut", std::string(1, options.cifar_shortcut)},
      {"input_size", std::to_string(input_height) + "x" + std::to_string(input_width)},
      {"normalize_mean", join(mean)},
      {"normalize_std", join(std)},
      {"class_names", nlohmann::json(class_names).dump()},
      {"dataset", dataset},
      {"epoch", std::to_string(epoch)}};
  if (eval_resize > 0) m["eval_resize"] = std::to_string(eval_resize);
  if (!init.empty()) {
    m["init"] = init;
    m["init_sha256"] = init_sha256;
  }
  return m;
}

CheckpointInfo CheckpointInfo::from_metadata(const std::map<std::string, std::string>& m,
                                             const std::string& path) {
  CheckpointInfo info;
  const std::string& format = require(m, "format", path);
  RESNET_CHECK(format == kFormat,
               path << ": expected checkpoint format " << kFormat << ", got '" << format << "'");
  info.model = require(m, "model", path);
  info.options.num_classes = to_int(require(m, "num_classes", path), path, "num_classes");
  info.options.in_channels = to_int(require(m, "in_channels", path), path, "in_channels");
  const std::string& shortcut = require(m, "shortcut", path);
  RESNET_CHECK(shortcut == "A" || shortcut == "B",
               path << ": metadata 'shortcut': expected A or B, got '" << shortcut << "'");
  info.options.cifar_shortcut = shortcut[0];
  const std::string& size = require(m, "input_size", path);
  const size_t x = size.find('x');
  RESNET_CHECK(x != std::string::npos,
               path << ": metadata 'input_size': expected HxW, got '" << size << "'");
  info.input_height = to_int(size.substr(0, x), path, "input_size");
  info.input_width = to_int(size.substr(x + 1), path, "input_size");
  if (auto it = m.find("eval_resize"); it != m.end()) {
    info.eval_resize = to_int(it->second, path, "eval_resize");
  }
  info.mean = to_floats(require(m, "normalize_mean", path), path, "normalize_mean");
  info.std = to_floats(require(m, "normalize_std", path), path, "normalize_std");
  RESNET_CHECK(static_cast<int64_t>(info.mean.size()) == info.options.in_channels &&
                   info.std.size() == info.mean.size(),
               path << ": expected " << info.options.in_channels
                    << " normalization means and stds, got " << info.mean.size() << " and "
                    << info.std.size());
  try {
    info.class_names =
        nlohmann::json::parse(require(m, "class_names", path)).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    RESNET_FAIL(path << ": metadata 'class_names': expected a JSON array of strings");
  }
  RESNET_CHECK(static_cast<int64_t>(info.class_names.size()) == info.options.num_classes,
               path << ": expected " << info.options.num_classes << " class names, got "
                    << info.class_names.size());
  info.dataset = require(m, "dataset", path);
  info.epoch = to_int(require(m, "epoch", path), path, "epoch");
  // Optional: written by fine-tuned runs only, so older checkpoints load as before.
  if (auto it = m.find("init"); it != m.end()) info.init = it->second;
  if (auto it = m.find("init_sha256"); it != m.end()) info.init_sha256 = it->second;
  return info;
}

data::Preprocessing eval_preprocessing(const CheckpointInfo& info) {
  data::Preprocessing p;
  p.name = "checkpoint";
  p.channels = info.options.in_channels;
  if (info.eval_resize > 0) {
    p.resize_shorter = info.eval_resize;
    p.crop_height = info.input_height;
    p.crop_width = info.input_width;
  } else {
    p.resize_height = info.input_height;
    p.resize_width = info.input_width;
  }
  p.mean = info.mean;
  p.std = info.std;
  return p;
}

void set_eval_transforms(const CheckpointInfo& info, data::LoaderOptions& options) {
  if (info.eval_resize > 0) {
    options.sample_transform = std::make_shared<data::ResizeCenterCrop>(eval_preprocessing(info));
    options.transform = nullptr;
  } else {
    options.sample_transform = nullptr;
    options.transform = std::make_shared<data::Normalize>(info.mean, info.std);
  }
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  return CheckpointInfo::from_metadata(io::read_safetensors(path).metadata, path);
}

TrainedModel load_trained_model(const std::string& path) {
  const io::SafetensorsFile file = io::read_safetensors(path);
  RESNET_CHECK(!file.metadata.empty(),
               path << ": expected a checkpoint written by resnet train (its __metadata__ names "
                       "the model, input size, normalization and classes), got a bare "
                       "state_dict without __metadata__");
  TrainedModel t;
  t.info = CheckpointInfo::from_metadata(file.metadata, path);
  t.module = models::build(t.info.model, t.info.options);
  io::load_state_dict(*t.module, path, t.info.model);
  t.module->eval();
  auto calibration = file.metadata.find("int8_calibration");
  if (calibration != file.metadata.end()) t.int8_calibration = calibration->second;
  return t;
}

}  // namespace resnet::train
