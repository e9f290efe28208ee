// resnet summary MODEL: prints exactly what Python's print(model) prints.

#include <iostream>

#include "command.h"
#include "resnet/models/zoo.h"

namespace resnet::cli {

void add_summary_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("summary", "Print a model's structure exactly as PyTorch's print(model)");
  struct Args {
    std::string model;
    models::ModelOptions options;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model, "Model name, e.g. block:64,128,2")->required();
  cmd->add_option("--num-classes", args->options.num_classes, "Classifier outputs")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--in-channels", args->options.in_channels, "Input image channels")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] {
    auto model = models::build(args->model, args->options);
    std::cout << model->to_string() << "\n";
  });
}

}  // namespace resnet::cli
