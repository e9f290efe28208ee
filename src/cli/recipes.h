#pragma once
// Recipes: named presets of `resnet train`'s options (--recipe NAME). A recipe is a list of
// command-line options, applied as if typed, so every option's own checks run on it; an
// option given on the command line beside it wins. config.json records the recipe's name
// and every resulting value.

#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace resnet::cli {

struct Recipe {
  std::string name;
  std::string summary;  // what it is for and what it reached, for --help
  std::vector<std::pair<std::string, std::string>> options;  // {"--epochs", "18"}
};

const std::vector<Recipe>& train_recipes();

// The --recipe option's help text: every recipe with its summary and options.
std::string recipes_help();

// Fills every option of `recipe` that the command line left unset, then runs its callback
// so the bound variable takes the value. `name` must be a known recipe (checked by the
// option's validator).
void apply_recipe(CLI::App& command, const std::string& name);

}  // namespace resnet::cli
