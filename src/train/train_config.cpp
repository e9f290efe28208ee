#include <cstdint>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "resnet/core/error.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

namespace {

// An integer field. nlohmann's get<int64_t>() casts a number too large for 64 bits (parsed
// as a double, e.g. 92233720368547758082) with a conversion whose result is undefined, so
// the kind and range are checked first.
template <typename T>
T integer_at(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = j.at(key);
  RESNET_CHECK(v.is_number_integer(), "'" << key << "': expected an integer, got " << v.dump());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    RESNET_CHECK(
        u <= static_cast<uint64_t>(std::numeric_limits<T>::max()),
        "'" << key << "': expected at most " << std::numeric_limits<T>::max() << ", got " << u);
    return static_cast<T>(u);
  }
  const int64_t i = v.get<int64_t>();
  RESNET_CHECK(std::in_range<T>(i), "'" << key << "': expected an integer in ["
                                        << +std::numeric_limits<T>::min() << ", "
                                        << +std::numeric_limits<T>::max() << "], got " << i);
  return static_cast<T>(i);
}

// The same for a key that older configs lack.
template <typename T>
T integer_or(const nlohmann::json& j, const char* key, T fallback) {
  return j.contains(key) ? integer_at<T>(j, key) : fallback;
}

}  // namespace

std::string TrainConfig::to_json() const {
  nlohmann::ordered_json j = {{"recipe", recipe},
                              {"model", model},
                              {"num_classes", model_options.num_classes},
                              {"in_channels", model_options.in_channels},
                              {"shortcut", std::string(1, model_options.cifar_shortcut)},
                              {"zero_init_residual", model_options.zero_init_residual},
                              {"data", data},
                              {"epochs", epochs},
                              {"batch", batch},
                              {"lr", lr},
                              {"momentum", momentum},
                              {"nesterov", nesterov},
                              {"weight_decay", weight_decay},
                              {"decay_bn_and_bias", decay_bn_and_bias},
                              {"schedule", schedule},
                              {"warmup_steps", warmup_steps},
                              {"label_smoothing", label_smoothing},
                              {"crop_padding", crop_padding},
                              {"flip", flip},
                              {"erasing", erasing},
                              {"size", size},
                              {"resize", resize},
                              {"reduced_decode", reduced_decode},
                              {"crop_scale", crop_scale},
                              {"precision", precision},
                              {"val_split", val_split},
                              {"workers", workers},
                              {"skip_bad_images", skip_bad_images},
                              {"seed", seed},
                              {"out", out},
                              {"threads", threads},
                              {"eval_batch", eval_batch},
                              {"grad_norm_steps", grad_norm_steps},
                              {"save_every", save_every},
                              {"keep_going_on_write_error", keep_going_on_write_error},
                              {"init", init},
                              {"freeze", freeze},
                              {"lr_backbone", lr_backbone},
                              {"ema", ema},
                              {"mixup", mixup},
                              {"cutmix", cutmix},
                              {"test_flip", test_flip},
                              {"sync_bn", sync_bn},
                              {"bucket_mb", bucket_mb}};
  return j.dump(2) + "\n";
}

namespace {

// What the command line's option checks refuse, refused in a config.json too (a --resume
// reads one that may have been edited by hand).
void check_ranges(const TrainConfig& c) {
  auto expect = [](bool ok, const char* key, const char* wanted) {
    RESNET_CHECK(ok, "'" << key << "': expected " << wanted);
  };
  expect(c.epochs > 0, "epochs", "a positive number");
  expect(c.batch > 0, "batch", "a positive number");
  expect(c.eval_batch > 0, "eval_batch", "a positive number");
  expect(c.lr > 0, "lr", "a positive number");
  expect(c.momentum >= 0 && c.momentum <= 1, "momentum", "a number in [0, 1]");
  expect(c.weight_decay >= 0, "weight_decay", "a non-negative number");
  expect(c.warmup_steps >= 0, "warmup_steps", "a non-negative number");
  expect(c.label_smoothing >= 0 && c.label_smoothing <= 1, "label_smoothing", "a number in [0, 1]");
  expect(c.crop_padding >= 0, "crop_padding", "a non-negative number");
  expect(c.erasing >= 0 && c.erasing <= 1, "erasing", "a number in [0, 1]");
  expect(c.size >= 0 && c.resize >= 0, "size", "non-negative sizes");
  expect(c.crop_scale >= 0.01 && c.crop_scale <= 1, "crop_scale", "a number in [0.01, 1]");
  expect(c.val_split >= 0 && c.val_split <= 0.99, "val_split", "a number in [0, 0.99]");
  expect(c.workers >= 0, "workers", "a non-negative number");
  expect(c.threads >= 0, "threads", "a non-negative number");
  expect(c.grad_norm_steps >= 0, "grad_norm_steps", "a non-negative number");
  expect(c.lr_backbone >= 0, "lr_backbone", "a non-negative number");
  expect(c.ema >= 0 && c.ema < 1, "ema", "a number in [0, 1)");
  expect(c.mixup >= 0 && c.cutmix >= 0, "mixup", "non-negative alphas");
  expect(c.save_every >= 0, "save_every", "a non-negative number");
  expect(c.model_options.num_classes >= 0 && c.model_options.in_channels >= 0, "num_classes",
         "non-negative class and channel counts");
}

}  // namespace

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& path) {
  TrainConfig c;
  try {
    auto j = nlohmann::json::parse(text);
    c.model = j.at("model").get<std::string>();
    c.model_options.num_classes = integer_at<int64_t>(j, "num_classes");
    c.model_options.in_channels = integer_at<int64_t>(j, "in_channels");
    const std::string shortcut = j.at("shortcut").get<std::string>();
    RESNET_CHECK(shortcut == "A" || shortcut == "B", "shortcut must be A or B");
    c.model_options.cifar_shortcut = shortcut[0];
    c.model_options.zero_init_residual = j.at("zero_init_residual").get<bool>();
    c.data = j.at("data").get<std::string>();
    c.epochs = integer_at<int64_t>(j, "epochs");
    c.batch = integer_at<int64_t>(j, "batch");
    c.lr = j.at("lr").get<double>();
    c.momentum = j.at("momentum").get<double>();
    c.nesterov = j.at("nesterov").get<bool>();
    c.weight_decay = j.at("weight_decay").get<double>();
    c.decay_bn_and_bias = j.at("decay_bn_and_bias").get<bool>();
    c.schedule = j.at("schedule").get<std::string>();
    c.warmup_steps = integer_at<int64_t>(j, "warmup_steps");
    c.label_smoothing = j.at("label_smoothing").get<double>();
    c.crop_padding = integer_at<int64_t>(j, "crop_padding");
    c.flip = j.at("flip").get<bool>();
    c.erasing = j.at("erasing").get<double>();
    // Keys added with images of any size; configs written before them mean the defaults.
    c.size = integer_or(j, "size", c.size);
    c.resize = integer_or(j, "resize", c.resize);
    c.reduced_decode = j.value("reduced_decode", c.reduced_decode);
    c.crop_scale = j.value("crop_scale", c.crop_scale);
    c.precision = j.value("precision", c.precision);
    c.val_split = j.value("val_split", c.val_split);
    c.workers = integer_or(j, "workers", c.workers);
    c.skip_bad_images = j.value("skip_bad_images", c.skip_bad_images);
    c.seed = integer_at<uint64_t>(j, "seed");
    c.out = j.at("out").get<std::string>();
    c.threads = integer_at<int>(j, "threads");
    c.eval_batch = integer_at<int64_t>(j, "eval_batch");
    c.grad_norm_steps = integer_at<int64_t>(j, "grad_norm_steps");
    // Fine-tuning keys: absent from older runs' configs, which used the defaults.
    c.init = j.value("init", c.init);
    c.freeze = j.value("freeze", c.freeze);
    c.lr_backbone = j.value("lr_backbone", c.lr_backbone);
    c.ema = j.value("ema", c.ema);
    c.mixup = j.value("mixup", c.mixup);
    c.cutmix = j.value("cutmix", c.cutmix);
    c.recipe = j.value("recipe", c.recipe);
    c.test_flip = j.value("test_flip", c.test_flip);
    c.sync_bn = j.value("sync_bn", c.sync_bn);
    c.bucket_mb = j.value("bucket_mb", c.bucket_mb);
    c.save_every = integer_or(j, "save_every", c.save_every);
    c.keep_going_on_write_error = j.value("keep_going_on_write_error", c.keep_going_on_write_error);
    check_ranges(c);
  } catch (const nlohmann::json::exception& e) {
    RESNET_FAIL(path << ": expected a training config written by resnet train, got: " << e.what());
  } catch (const Error& e) {
    RESNET_FAIL(path << ": " << e.what());
  }
  return c;
}

}  // namespace resnet::train
