#include <nlohmann/json.hpp>

#include "resnet/core/error.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

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
                              {"test_flip", test_flip}};
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
    c.model_options.num_classes = j.at("num_classes").get<int64_t>();
    c.model_options.in_channels = j.at("in_channels").get<int64_t>();
    const std::string shortcut = j.at("shortcut").get<std::string>();
    RESNET_CHECK(shortcut == "A" || shortcut == "B", "shortcut must be A or B");
    c.model_options.cifar_shortcut = shortcut[0];
    c.model_options.zero_init_residual = j.at("zero_init_residual").get<bool>();
    c.data = j.at("data").get<std::string>();
    c.epochs = j.at("epochs").get<int64_t>();
    c.batch = j.at("batch").get<int64_t>();
    c.lr = j.at("lr").get<double>();
    c.momentum = j.at("momentum").get<double>();
    c.nesterov = j.at("nesterov").get<bool>();
    c.weight_decay = j.at("weight_decay").get<double>();
    c.decay_bn_and_bias = j.at("decay_bn_and_bias").get<bool>();
    c.schedule = j.at("schedule").get<std::string>();
    c.warmup_steps = j.at("warmup_steps").get<int64_t>();
    c.label_smoothing = j.at("label_smoothing").get<double>();
    c.crop_padding = j.at("crop_padding").get<int64_t>();
    c.flip = j.at("flip").get<bool>();
    c.erasing = j.at("erasing").get<double>();
    // Keys added with images of any size; configs written before them mean the defaults.
    c.size = j.value("size", c.size);
    c.resize = j.value("resize", c.resize);
    c.reduced_decode = j.value("reduced_decode", c.reduced_decode);
    c.crop_scale = j.value("crop_scale", c.crop_scale);
    c.precision = j.value("precision", c.precision);
    c.val_split = j.value("val_split", c.val_split);
    c.workers = j.value("workers", c.workers);
    c.skip_bad_images = j.value("skip_bad_images", c.skip_bad_images);
    c.seed = j.at("seed").get<uint64_t>();
    c.out = j.at("out").get<std::string>();
    c.threads = j.at("threads").get<int>();
    c.eval_batch = j.at("eval_batch").get<int64_t>();
    c.grad_norm_steps = j.at("grad_norm_steps").get<int64_t>();
    // Fine-tuning keys: absent from older runs' configs, which used the defaults.
    c.init = j.value("init", c.init);
    c.freeze = j.value("freeze", c.freeze);
    c.lr_backbone = j.value("lr_backbone", c.lr_backbone);
    c.ema = j.value("ema", c.ema);
    c.mixup = j.value("mixup", c.mixup);
    c.cutmix = j.value("cutmix", c.cutmix);
    c.recipe = j.value("recipe", c.recipe);
    c.test_flip = j.value("test_flip", c.test_flip);
    c.save_every = j.value("save_every", c.save_every);
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
