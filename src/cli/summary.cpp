// resnet summary MODEL: prints exactly what Python's print(model) prints.

#include <iostream>

#include "command.h"
#include "model_loading.h"
#include "resnet/models/layer_table.h"
#include "resnet/models/zoo.h"

namespace resnet::cli {

void add_summary_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("summary", "Print a model's structure exactly as PyTorch's print(model)");
  struct Args {
    std::string model;
    models::ModelOptions options;
    bool table = false;
    int64_t size = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model, "Model name, e.g. block:64,128,2")->required();
  add_model_options(cmd, args->options);
  cmd->add_flag("--table", args->table,
                "Also print each layer's output shape, parameters and multiply-accumulates");
  cmd->add_option(
         "--size", args->size,
         "Input side for --table (default: 224 for torchvision, 32 for CIFAR, 56 for blocks)")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] {
    LoadedModel m = load_model(args->model, "", args->options);
    std::cout << m.module->to_string() << "\n";
    if (args->table) {
      int64_t size = args->size;
      if (size == 0)
        size = m.name.rfind("block:", 0) == 0           ? 56
               : m.module->type_name() == "CifarResNet" ? 32
                                                        : 224;
      const int64_t channels = models::expected_in_channels(m.name, m.options);
      std::cout << "\n" << models::layer_table(*m.module, {1, channels, size, size});
    }
  });
}

}  // namespace resnet::cli
