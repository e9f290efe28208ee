// The command line as users meet it: exact printed structures, the run tool, and bad
// input ending in one clear line on stderr and a non-zero exit.

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::run_cli;

std::string fixture(const std::string& rel) {
  return std::string(RESNET_FIXTURE_DIR) + "/" + rel;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The seed block's printed structure, byte for byte as PyTorch prints ResidualBlock(64, 128, 2)
// (the README's `resnet summary` section shows it).
TEST(CliSummary, SeedBlockPrintsExactly) {
  auto r = run_cli("summary block:64,128,2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(fixture("print/block_64_128_2.txt")));
  EXPECT_TRUE(r.err.empty());
}

TEST(CliSummary, IdentityShortcutPrintsEmptySequential) {
  auto r = run_cli("summary block:64,64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(fixture("print/block_64_64.txt")));
  EXPECT_NE(r.out.find("  (shortcut): Sequential()\n"), std::string::npos);
}

// Totals torchvision and the paper report: resnet18 has 11,689,512 parameters and 1.81 G
// multiply-accumulates at 224x224; the CIFAR ResNet-20 has 0.27 M parameters.
TEST(CliSummary, TableTotals) {
  auto r = run_cli("summary resnet18 --table");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Total params: 11,689,512\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Total MACs: 1,814,073,344 (1.81 G) for input [1, 3, 224, 224]"),
            std::string::npos);
  EXPECT_NE(r.out.find("fc (Linear)"), std::string::npos);
  // One row per ReLU call, as the modules run: the stem's and two per BasicBlock.
  size_t relu_rows = 0;
  for (size_t at = r.out.find(" (ReLU) "); at != std::string::npos;
       at = r.out.find(" (ReLU) ", at + 1))
    ++relu_rows;
  EXPECT_EQ(relu_rows, 17u) << r.out;
  EXPECT_NE(r.out.find("layer4.1.relu (ReLU)"), std::string::npos);
  r = run_cli("summary resnet20 --table --in-channels 1 --size 28");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Total params: 269,434\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1, 1, 28, 28]"), std::string::npos);
}

TEST(CliSummary, HelpExitsZero) {
  for (const char* cmd : {"summary --help", "run --help", "bench --help", "--help"}) {
    auto r = run_cli(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

TEST(CliBadInput, UnknownModel) {
  expect_clean_failure(run_cli("summary resnet9000"), {"resnet9000", "known"});
  expect_clean_failure(run_cli("summary block:5"), {"block:5", "block:IN,OUT"});
  expect_clean_failure(run_cli("summary block:5,x"), {"'x'"});
  expect_clean_failure(run_cli("summary block:0,4"), {"positive"});
}

class CliRun : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("cli_run"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string run_args(const std::string& weights, const std::string& input) const {
    return "run --model block:5,8,2 --weights " + weights + " --input " + input + " --output " +
           path("y.npy");
  }
  std::filesystem::path dir_;
  const std::string weights_ = fixture("block_5_8_2/weights.safetensors");
  const std::string input_ = fixture("block_5_8_2/input.npy");
};

TEST_F(CliRun, MatchesTorchAndWritesEverything) {
  auto r =
      run_cli(run_args(weights_, input_) + " --train --grad-output " +
              fixture("block_5_8_2/grad_output_train.npy") + " --grad-input " + path("dx.npy") +
              " --grads " + path("g.safetensors") + " --state-out " + path("s.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_close(io::read_npy(path("y.npy")),
                        io::read_npy(fixture("block_5_8_2/output_train.npy")), 1e-4, "y");
  testing::expect_close(io::read_npy(path("dx.npy")),
                        io::read_npy(fixture("block_5_8_2/grad_input_train.npy")), 1e-4, "dx");
  auto grads = io::read_safetensors(path("g.safetensors"));
  EXPECT_EQ(grads.tensors.size(), 9u);
  auto state = io::read_safetensors(path("s.safetensors"));
  ASSERT_NE(state.find("bn1.num_batches_tracked"), nullptr);
  EXPECT_EQ(state.find("bn1.num_batches_tracked")->i64()[0],
            io::read_safetensors(weights_).find("bn1.num_batches_tracked")->i64()[0] + 1);
}

TEST_F(CliRun, MissingFile) {
  expect_clean_failure(run_cli(run_args(weights_, path("nope.npy"))), {"nope.npy"});
  expect_clean_failure(run_cli(run_args(path("nope.safetensors"), input_)), {"nope.safetensors"});
}

TEST_F(CliRun, WrongRankInput) {
  io::write_npy(path("x3.npy"), Tensor({5, 7, 9}));
  expect_clean_failure(run_cli(run_args(weights_, path("x3.npy"))),
                       {"x3.npy", "[5, 7, 9]", "expected"});
}

TEST_F(CliRun, WrongChannelInput) {
  io::write_npy(path("x4.npy"), Tensor({2, 4, 7, 9}));
  expect_clean_failure(run_cli(run_args(weights_, path("x4.npy"))),
                       {"x4.npy", "[2, 4, 7, 9]", "5"});
}

TEST_F(CliRun, GradOutputOfWrongShape) {
  io::write_npy(path("dy.npy"), Tensor({3, 8, 4, 4}));
  expect_clean_failure(run_cli(run_args(weights_, input_) + " --grad-output " + path("dy.npy")),
                       {"dy.npy", "[3, 8, 4, 5]", "[3, 8, 4, 4]"});
}

// Rewrites the fixture's weights with one tensor changed by `edit` (or dropped when it
// returns an undefined tensor).
std::string edited_weights(const std::string& out, const std::string& src, const std::string& name,
                           const std::function<Tensor(const Tensor&)>& edit) {
  auto file = io::read_safetensors(src);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [n, t] : file.tensors) {
    Tensor u = n == name ? edit(t) : t;
    if (u.defined()) tensors.emplace_back(n, u);
  }
  io::write_safetensors(out, tensors);
  return out;
}

TEST_F(CliRun, WeightsMissingATensor) {
  auto w = edited_weights(path("w.safetensors"), weights_, "bn2.running_var",
                          [](const Tensor&) { return Tensor(); });
  expect_clean_failure(run_cli(run_args(w, input_)),
                       {"w.safetensors", "bn2.running_var", "missing"});
}

TEST_F(CliRun, WeightsWithWrongShape) {
  auto w = edited_weights(path("w.safetensors"), weights_, "conv1.weight", [](const Tensor&) {
    return Tensor({8, 5, 1, 1});
  });
  expect_clean_failure(run_cli(run_args(w, input_)),
                       {"w.safetensors", "conv1.weight", "[8, 5, 3, 3]", "[8, 5, 1, 1]"});
}

TEST_F(CliRun, WeightsWithWrongDtype) {
  auto w = edited_weights(path("w.safetensors"), weights_, "bn1.num_batches_tracked",
                          [](const Tensor&) { return Tensor(Shape{}); });
  expect_clean_failure(run_cli(run_args(w, input_)),
                       {"w.safetensors", "bn1.num_batches_tracked", "I64", "f32"});
}

TEST_F(CliRun, WeightsWithUnexpectedTensor) {
  auto file = io::read_safetensors(weights_);
  file.tensors.emplace_back("fc.weight", Tensor({2, 2}));
  io::write_safetensors(path("w.safetensors"), file.tensors);
  expect_clean_failure(run_cli(run_args(path("w.safetensors"), input_)),
                       {"w.safetensors", "fc.weight", "unexpected"});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

TEST_F(CliRun, TruncatedNpy) {
  std::string full = slurp(input_);
  write_bytes(path("t.npy"), full.substr(0, full.size() - 7));
  expect_clean_failure(run_cli(run_args(weights_, path("t.npy"))), {"t.npy"});
  write_bytes(path("t2.npy"), full.substr(0, 20));
  expect_clean_failure(run_cli(run_args(weights_, path("t2.npy"))), {"t2.npy"});
}

TEST_F(CliRun, CorruptNpy) {
  write_bytes(path("c.npy"), "this is not a numpy file at all, not even close");
  expect_clean_failure(run_cli(run_args(weights_, path("c.npy"))), {"c.npy"});
}

TEST_F(CliRun, TruncatedSafetensors) {
  std::string full = slurp(weights_);
  write_bytes(path("t.safetensors"), full.substr(0, full.size() - 10));
  expect_clean_failure(run_cli(run_args(path("t.safetensors"), input_)), {"t.safetensors"});
}

TEST_F(CliRun, CorruptSafetensorsHeader) {
  std::string full = slurp(weights_);
  full[8] = '#';  // the JSON's opening brace
  write_bytes(path("c.safetensors"), full);
  expect_clean_failure(run_cli(run_args(path("c.safetensors"), input_)), {"c.safetensors"});
}

TEST_F(CliRun, SafetensorsHeaderClaimingGigabytes) {
  std::string bytes(8, '\0');
  uint64_t n = 40ull << 30;  // 40 GiB of header, in a 16-byte file
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  write_bytes(path("huge.safetensors"), bytes + "{}      ");
  expect_clean_failure(run_cli(run_args(path("huge.safetensors"), input_)), {"huge.safetensors"});
}

TEST_F(CliRun, NpyHeaderClaimingGigabytes) {
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100, 5), }";
  header.resize(118, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  write_bytes(path("huge.npy"), bytes + header + std::string(64, '\0'));
  expect_clean_failure(run_cli(run_args(weights_, path("huge.npy"))), {"huge.npy"});
}

TEST_F(CliRun, UnsupportedNpyDtype) {
  std::string header = "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 5, 1, 1), }";
  header.resize(118, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  write_bytes(path("c8.npy"), bytes + header + std::string(40, '\0'));
  expect_clean_failure(run_cli(run_args(weights_, path("c8.npy"))), {"c8.npy", "<c8"});
}

TEST(CliBench, JsonHasTheContractFields) {
  auto r = run_cli("bench --model block:4,6,2 --batch 2 --size 9 --iters 2 --warmup 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("images_per_s").get<double>(), 0);
  EXPECT_GT(j.at("latency_ms_p50").get<double>(), 0);
  r = run_cli(
      "bench --model block:4,6,2 --mode train --batch 2 --size 9 --iters 2 --warmup 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(nlohmann::json::parse(r.out).at("images_per_s").get<double>(), 0);
}

TEST(CliBench, RefusesBadArguments) {
  expect_clean_failure(run_cli("bench --model block:4,6,2 --mode fly"), {"--mode"});
  expect_clean_failure(run_cli("bench --model block:4,6,2 --in-channels 3"),
                       {"--in-channels", "4"});
  expect_clean_failure(run_cli("bench --model nope"), {"nope"});
  expect_clean_failure(run_cli("bench --model resnet20 --freeze layer1"),
                       {"--freeze", "--mode train"});
  expect_clean_failure(run_cli("bench --model resnet20 --mode train --freeze layer5"),
                       {"'layer5' is no module"});
}

TEST(CliBench, TrainsWithFrozenModules) {
  for (const char* spec : {"backbone", "conv1,bn1,layer1", "layer2.1"}) {
    auto r = run_cli(std::string("bench --model resnet20 --mode train --batch 2 --size 12 "
                                 "--iters 1 --warmup 1 --json --freeze ") +
                     spec);
    ASSERT_EQ(r.exit_code, 0) << spec << ": " << r.err;
    EXPECT_GT(nlohmann::json::parse(r.out).at("images_per_s").get<double>(), 0) << spec;
  }
}

}  // namespace
}  // namespace resnet
