#include "model_loading.h"

namespace resnet::cli {

void add_model_options(CLI::App* cmd, models::ModelOptions& options) {
  cmd->add_option("--num-classes", options.num_classes,
                  "Classifier outputs (default: 1000 for ImageNet networks, 10 for CIFAR ones)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--in-channels", options.in_channels, "Input image channels (default 3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shortcut", options.cifar_shortcut,
                  "CIFAR networks: A = zero-padded identity (default), B = 1x1 conv projection")
      ->check(CLI::IsMember({'A', 'B'}));
  cmd->add_flag("--zero-init-residual", options.zero_init_residual,
                "Start each residual block's last BN weight at 0");
}

}  // namespace resnet::cli
