#include "recipes.h"

#include <CLI/CLI.hpp>

#include "resnet/core/error.h"

namespace resnet::cli {

const std::vector<Recipe>& train_recipes() {
  // Measured on Fashion-MNIST; docs/results/ holds the runs and the README the figures.
  static const std::vector<Recipe> recipes = {
      {"speedrun",
       "94% Fashion-MNIST test accuracy within the time PyTorch needs for 12 epochs of "
       "ResNet-20 steps",
       {{"--model", "resnet20"},
        {"--precision", "bf16"},
        {"--epochs", "20"},
        {"--batch", "128"},
        {"--lr", "0.2"},
        {"--schedule", "onecycle"},
        {"--label-smoothing", "0.1"},
        {"--erasing", "0.25"},
        {"--test-flip", "true"}}},
      {"best",
       "the highest Fashion-MNIST accuracy we have measured, at any budget",
       {{"--model", "resnet20"},
        {"--epochs", "75"},
        {"--batch", "128"},
        {"--lr", "0.2"},
        {"--schedule", "onecycle"},
        {"--label-smoothing", "0.1"},
        {"--erasing", "0.5"}}},
  };
  return recipes;
}

std::string recipes_help() {
  std::string help = "Preset of the options below; options given beside it win:";
  for (const Recipe& r : train_recipes()) {
    help += "\n" + r.name + ": " + r.summary + "\n   ";
    for (const auto& [flag, value] : r.options) help += " " + flag + " " + value;
  }
  return help;
}

void apply_recipe(CLI::App& command, const std::string& name) {
  for (const Recipe& r : train_recipes()) {
    if (r.name != name) continue;
    for (const auto& [flag, value] : r.options) {
      CLI::Option* option = command.get_option(flag);
      if (option->count() > 0) continue;  // given on the command line
      option->add_result(value);
      option->run_callback();
    }
    return;
  }
  RESNET_FAIL("--recipe: no recipe named '" << name << "'");  // the option's check prevents it
}

}  // namespace resnet::cli
