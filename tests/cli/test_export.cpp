// resnet export as a user meets it: zoo names, blocks and checkpoints written as ONNX that
// carries the model's own weights under their state_dict names, --size, bad input ending
// in one line on stderr, and the files accepted by the reference checker (python3-onnx)
// when it is installed.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "io/onnx_test_util.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::run_cli;

std::string fixture(const std::string& rel) {
  return std::string(RESNET_FIXTURE_DIR) + "/" + rel;
}

class CliExport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("export"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Exports and reads back; `extra` holds further options.
  onnx::ModelProto export_ok(const std::string& model, const std::string& out,
                             const std::string& extra = "") {
    auto r = run_cli("export --model " + model + " --onnx " + path(out) + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    EXPECT_NE(r.out.find("wrote " + path(out)), std::string::npos) << r.out;
    return testing::read_onnx_proto(path(out));
  }

  std::filesystem::path dir_;
};

TEST_F(CliExport, ZooModelsCarryTheStateDictNames) {
  struct Case {
    std::string model, extra;
    models::ModelOptions options;
  };
  models::ModelOptions b;
  b.cifar_shortcut = 'B';
  for (const Case& c : std::vector<Case>{{"resnet20", "", {}},
                                         {"resnet20", "--shortcut B", b},
                                         {"resnet18", "", {}},
                                         {"block:5,8,2", "", {}}}) {
    SCOPED_TRACE(c.model + " " + c.extra);
    onnx::ModelProto m = export_ok(c.model, "m.onnx", c.extra);
    EXPECT_EQ(m.opset_import(0).version(), 13);
    testing::expect_well_formed(m);
    auto reference = models::build(c.model, c.options);
    EXPECT_EQ(testing::float_initializers(m), testing::inference_state(*reference));
  }
}

TEST_F(CliExport, WeightsAreThoseLoaded) {
  const std::string weights = fixture("block_5_8_2/weights.safetensors");
  onnx::ModelProto m = export_ok("block:5,8,2", "b.onnx", "--weights " + weights);
  io::SafetensorsFile file = io::read_safetensors(weights);
  int checked = 0;
  for (const auto& [name, t] : file.tensors) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    const auto* init = testing::find_initializer(m, name);
    ASSERT_NE(init, nullptr) << name;
    EXPECT_TRUE(testing::same_floats(*init, t)) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 15);  // 3 convs, 3 BNs of 4
}

TEST_F(CliExport, CheckpointNamesItsArchitecture) {
  models::ModelOptions options;
  options.in_channels = 1;
  options.cifar_shortcut = 'B';
  auto model = models::build("resnet20", options);
  io::save_state_dict(
      *model, path("ckpt.safetensors"),
      {{"model", "resnet20"}, {"num_classes", "10"}, {"in_channels", "1"}, {"shortcut", "B"}});
  onnx::ModelProto m = export_ok(path("ckpt.safetensors"), "c.onnx", "--size 28");
  EXPECT_EQ(testing::declared_dims(m.graph().input(0)),
            (std::vector<std::string>{"N", "1", "28", "28"}));
  EXPECT_EQ(testing::declared_dims(m.graph().output(0)), (std::vector<std::string>{"N", "10"}));
  for (auto& [name, t] : model->state_dict()) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    const auto* init = testing::find_initializer(m, name);
    ASSERT_NE(init, nullptr) << name;
    EXPECT_TRUE(testing::same_floats(*init, *t)) << name;
  }
}

TEST_F(CliExport, ModelOptions) {
  onnx::ModelProto m = export_ok("resnet18", "r.onnx", "--num-classes 7 --in-channels 1 --size 64");
  EXPECT_EQ(testing::declared_dims(m.graph().input(0)),
            (std::vector<std::string>{"N", "1", "64", "64"}));
  EXPECT_EQ(testing::declared_dims(m.graph().output(0)), (std::vector<std::string>{"N", "7"}));
}

TEST_F(CliExport, HelpExitsZero) {
  auto r = run_cli("export --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--onnx"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--size"), std::string::npos) << r.out;
}

TEST_F(CliExport, BadInput) {
  expect_clean_failure(run_cli("export --model resnet20 --onnx " + path("nodir/x.onnx")),
                       {path("nodir/x.onnx")});
  EXPECT_FALSE(std::filesystem::exists(path("nodir")));
  expect_clean_failure(run_cli("export --model resnet9000 --onnx " + path("x.onnx")),
                       {"resnet9000"});
  expect_clean_failure(run_cli("export --model resnet20"), {"--onnx"});
  expect_clean_failure(run_cli("export --model block:5,8,2 --onnx " + path("x.onnx") +
                               " --weights " + path("missing.safetensors")),
                       {"missing.safetensors"});
  // A failed export leaves nothing behind, not even a temporary file.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

// The interpreter that can import onnx, or "" (Debian's python3-onnx lives in the system
// interpreter, which is not always the first python3 on PATH).
std::string python_with_onnx() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(py) + " -c 'import onnx' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

TEST_F(CliExport, ReferenceCheckerAccepts) {
  const std::string python = python_with_onnx();
  if (python.empty()) GTEST_SKIP() << "python3-onnx is not installed: onnx.checker not run";
  std::string files;
  struct Case {
    std::string model, extra, file;
  };
  for (const Case& c : std::vector<Case>{{"resnet20", "", "resnet20.onnx"},
                                         {"resnet20", "--shortcut B --in-channels 1", "b.onnx"},
                                         {"resnet18", "", "resnet18.onnx"},
                                         {"resnet18", "--size 64", "resnet18_64.onnx"},
                                         {"block:5,8,2", "", "block.onnx"},
                                         {"block:5,8,2", "--size 9", "block_9.onnx"}}) {
    export_ok(c.model, c.file, c.extra);
    files.append(" ").append(path(c.file));
  }
  const std::string script = std::string(RESNET_FIXTURE_DIR) + "/../../tools/check_onnx.py";
  const std::string log = path("checker.log");
  const int status = std::system((python + " " + script + files + " >" + log + " 2>&1").c_str());
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(status, 0) << text;
  // Shape inference agrees with what we declared for the fixed sizes.
  EXPECT_NE(text.find("block_9.onnx: ok, opset 13, 9 nodes, 15 initializers, output [N, 8, 5, 5]"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace resnet
