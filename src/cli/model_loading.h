#pragma once
// What several subcommands share: the model options every model-building command takes.
// Turning --model and --weights into a ready module is the library's
// (resnet/api/model_loading.h); the subcommands use it under these names.

#include <CLI/CLI.hpp>

#include "resnet/api/model_loading.h"
#include "resnet/models/zoo.h"

namespace resnet::cli {

using api::checkpoint_metadata;
using api::InferenceModel;
using api::is_onnx_path;
using api::load_inference_model;
using api::load_model;
using api::LoadedModel;

// Adds --num-classes, --in-channels, --shortcut and --zero-init-residual to `cmd`.
void add_model_options(CLI::App* cmd, models::ModelOptions& options);

}  // namespace resnet::cli
