// The zoo's structure against PyTorch: printed text and state_dict keys of every model
// (tests/fixtures/print/, written by tools/gen_fixtures.py from torchvision 0.14 and
// tools/torch_models.py's CIFAR networks), parameter counts, model options, unknown names.
// CIFAR networks are printed with their defaults: 3 input channels, 10 classes, shortcut A
// (resnet20_B: shortcut B).

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "resnet/core/error.h"
#include "resnet/models/zoo.h"

namespace resnet {
namespace {

using nlohmann::json;

std::string print_path(const std::string& file) {
  return std::string(RESNET_FIXTURE_DIR) + "/print/" + file;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

// `resnet summary` arguments as index.json writes them ("resnet20 --shortcut B") ->
// the model name and its options.
std::pair<std::string, models::ModelOptions> parse_summary_args(const std::string& args) {
  std::istringstream words(args);
  std::string name, flag, value;
  words >> name;
  models::ModelOptions options;
  while (words >> flag >> value) {
    if (flag == "--num-classes") {
      options.num_classes = std::stoll(value);
    } else if (flag == "--in-channels") {
      options.in_channels = std::stoll(value);
    } else if (flag == "--shortcut") {
      options.cifar_shortcut = value.at(0);
    } else {
      throw std::runtime_error("index.json: unexpected option " + flag + " in '" + args + "'");
    }
  }
  return {name, options};
}

// Every zoo model the generator prints (ZOO_PRINT_MODELS), by file stem.
const std::vector<std::string> kStems = {"resnet18",
                                         "resnet34",
                                         "resnet50",
                                         "resnet101",
                                         "resnet152",
                                         "wide_resnet50_2",
                                         "wide_resnet101_2",
                                         "resnext50_32x4d",
                                         "resnext101_32x8d",
                                         "resnext101_64x4d",
                                         "resnet20",
                                         "resnet32",
                                         "resnet44",
                                         "resnet56",
                                         "resnet110",
                                         "resnet1202",
                                         "plain20",
                                         "plain32",
                                         "plain44",
                                         "plain56",
                                         "plain110",
                                         "resnet20_B",
                                         "resnet18_in1_classes10",
                                         "resnet20_in1_classes100"};

class ZooStructure : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooStructure, PrintKeysAndParameterCountMatchPyTorch) {
  const std::string stem = GetParam();
  const json index = read_json(print_path("index.json"));
  ASSERT_TRUE(index.contains(stem)) << stem << " missing from print/index.json";
  const auto [name, options] = parse_summary_args(index.at(stem).get<std::string>());
  auto model = models::build(name, options);
  EXPECT_EQ(model->to_string() + "\n", slurp(print_path(stem + ".txt"))) << stem;
  std::string keys;
  for (auto& [key, t] : model->state_dict()) keys += key + "\n";
  EXPECT_EQ(keys, slurp(print_path(stem + ".keys.txt"))) << stem;
  const json params = read_json(print_path("params.json"));
  ASSERT_TRUE(params.contains(stem)) << stem << " missing from print/params.json";
  EXPECT_EQ(model->parameter_count(), params.at(stem).get<int64_t>()) << stem;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ZooStructure, ::testing::ValuesIn(kStems),
                         [](const auto& info) { return info.param; });

// The generator and this test agree on the list; new zoo prints need a line here.
TEST(ZooStructureIndex, ListsEveryPrintedModel) {
  const json index = read_json(print_path("index.json"));
  for (const auto& stem : kStems) EXPECT_TRUE(index.contains(stem)) << stem;
  for (auto it = index.begin(); it != index.end(); ++it) {
    const bool block = it.key().rfind("block_", 0) == 0;
    EXPECT_TRUE(block || std::find(kStems.begin(), kStems.end(), it.key()) != kStems.end())
        << it.key() << " is printed by the generator but not checked here";
  }
}

// Totals torchvision and the paper report (torchvision's docs: resnet18 11,689,512;
// He et al. 2015, table 6: ResNet-20 0.27 M, ResNet-110 1.7 M).
// (The other models' counts are checked against PyTorch's in ZooStructure.)
TEST(ZooParameterCounts, MatchPublishedTotals) {
  EXPECT_EQ(models::build("resnet18")->parameter_count(), 11689512);
  EXPECT_EQ(models::build("resnet20")->parameter_count(), 269722);
  EXPECT_EQ(models::build("resnet110")->parameter_count(), 1727962);
  // Shortcut B adds a 1x1 conv + BN at the two widening blocks: 16*32 + 64 + 32*64 + 128.
  models::ModelOptions b;
  b.cifar_shortcut = 'B';
  EXPECT_EQ(models::build("resnet20", b)->parameter_count(), 269722 + 512 + 64 + 2048 + 128);
  // A plain network has exactly the parameters of its residual twin (option A adds none).
  EXPECT_EQ(models::build("plain56")->parameter_count(),
            models::build("resnet56")->parameter_count());
}

Shape shape_of(nn::Module& model, const std::string& key) {
  for (auto& [name, t] : model.state_dict())
    if (name == key) return t->shape();
  ADD_FAILURE() << key << " not in the state_dict";
  return {};
}

TEST(ZooOptions, NumClassesAndInChannelsReshapeFcAndConv1) {
  models::ModelOptions o;
  o.num_classes = 7;
  o.in_channels = 1;
  auto tv = models::build("resnet18", o);
  EXPECT_EQ(shape_of(*tv, "conv1.weight"), (Shape{64, 1, 7, 7}));
  EXPECT_EQ(shape_of(*tv, "fc.weight"), (Shape{7, 512}));
  EXPECT_EQ(shape_of(*tv, "fc.bias"), (Shape{7}));
  auto cifar = models::build("plain32", o);
  EXPECT_EQ(shape_of(*cifar, "conv1.weight"), (Shape{16, 1, 3, 3}));
  EXPECT_EQ(shape_of(*cifar, "fc.weight"), (Shape{7, 64}));
  // Family defaults: 1000 classes for torchvision names, 10 for CIFAR ones.
  EXPECT_EQ(shape_of(*models::build("resnet18"), "fc.weight"), (Shape{1000, 512}));
  EXPECT_EQ(shape_of(*models::build("resnet20"), "fc.weight"), (Shape{10, 64}));
}

TEST(ZooOptions, CliFlagsReshapeFcAndConv1) {
  auto r = testing::run_cli("summary resnet18 --num-classes 10 --in-channels 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(print_path("resnet18_in1_classes10.txt")));
  r = testing::run_cli("summary resnet20 --num-classes 100 --in-channels 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(print_path("resnet20_in1_classes100.txt")));
  r = testing::run_cli("summary resnet20 --shortcut B");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(print_path("resnet20_B.txt")));
}

// Caffe's "Unknown layer type: X (known types: ...)": the message names the model and
// lists every known name.
TEST(ZooUnknownName, RefusedWithTheKnownNames) {
  for (const std::string bad : {"resnet19", "plain1202", "ResNet18", "resnext50", ""}) {
    try {
      models::build(bad);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("unknown model '" + bad + "'"), std::string::npos) << what;
      for (const auto& known : models::known_names())
        EXPECT_NE(what.find(known), std::string::npos) << known << " not listed in: " << what;
    }
  }
  auto r = testing::run_cli("summary resnet19");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("resnet19"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resnext101_64x4d"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("plain110"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace resnet
