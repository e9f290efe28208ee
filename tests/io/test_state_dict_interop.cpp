// torchvision state_dicts both ways. What we save has exactly torchvision's keys, order,
// dtypes and shapes (against listings PyTorch produced); a file with exactly torchvision's
// entries, filled deterministically, loads through the library and `resnet run --model
// resnet18 --weights` and gives PyTorch's output; a state_dict written by PyTorch and a
// Python safetensors writer loads end to end; F64, F16 and BF16 files load converted; and
// a state_dict that does not fit ends in one line naming the file, the tensors and the model.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "io_test_util.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "support/deterministic_weights.h"
#include "support/gradcheck.h"
#include "support/raw_safetensors.h"
#include "support/state_dict_listing.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::interop_fixture;
using testing::run_cli;

std::string fixture(const std::string& rel) {
  return std::string(RESNET_FIXTURE_DIR) + "/" + rel;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

// The JSON header of a safetensors file, as written (dtype names and key order included).
nlohmann::ordered_json raw_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char length[8] = {};
  in.read(reinterpret_cast<char*>(length), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(length[i]) << (8 * i);
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  return nlohmann::ordered_json::parse(text);
}

std::string dtype_in_file(DType d) {
  return d == DType::i64 ? "I64" : d == DType::f32 ? "F32" : "?";
}

// --- what we save is torchvision's state_dict ---

class SavedStateDict : public ::testing::TestWithParam<std::string> {};

TEST_P(SavedStateDict, HasTorchvisionsKeysOrderDtypesAndShapes) {
  const std::string model_name = GetParam();
  const auto listing = testing::read_state_dict_listing(model_name);
  nn::ModulePtr model = models::build(model_name);
  auto state = model->state_dict();
  ASSERT_EQ(state.size(), listing.size()) << model_name;
  for (size_t i = 0; i < listing.size(); ++i) {
    EXPECT_EQ(state[i].first, listing[i].name) << "entry " << i;
    EXPECT_EQ(dtype_in_file(state[i].second->dtype()), listing[i].dtype) << listing[i].name;
    EXPECT_EQ(state[i].second->shape(), listing[i].shape) << listing[i].name;
  }
  // And the file: the header, as written, lists the same entries in the same order with
  // the same dtype names (num_batches_tracked as I64).
  testing::TempDir dir;
  const std::string path = dir.file(model_name + ".safetensors");
  io::save_state_dict(*model, path);
  const auto header = raw_header(path);
  size_t i = 0;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    ASSERT_LT(i, listing.size());
    EXPECT_EQ(name, listing[i].name);
    EXPECT_EQ(info.at("dtype").get<std::string>(), listing[i].dtype) << name;
    EXPECT_EQ(info.at("shape").get<Shape>(), listing[i].shape) << name;
    ++i;
  }
  EXPECT_EQ(i, listing.size());
}

INSTANTIATE_TEST_SUITE_P(Torchvision, SavedStateDict,
                         ::testing::Values("resnet18", "resnet50", "resnext50_32x4d"));

// --- torchvision's state_dict loads in ours ---

// resnet18's listed state_dict, written once for the suite (46 MB), with the seed and input
// of the zoo fixture tests/fixtures/resnet18, whose output_eval.npy is PyTorch's output for
// exactly these weights (tools/gen_interop_fixtures.py checks that).
class TorchvisionResnet18 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>();
    const auto c = read_json(fixture("resnet18/case.json"));
    seed_ = c.at("seed").get<uint64_t>();
    input_shape_ = c.at("input_shape").get<Shape>();
    weights_ = dir_->file("torchvision_resnet18.safetensors");
    io::write_safetensors(
        weights_, testing::listed_state_dict(testing::read_state_dict_listing("resnet18"), seed_));
    input_ = dir_->file("input.npy");
    io::write_npy(input_, testing::deterministic_tensor(seed_, "input", input_shape_));
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::unique_ptr<testing::TempDir> dir_;
  static uint64_t seed_;
  static Shape input_shape_;
  static std::string weights_, input_;
};
std::unique_ptr<testing::TempDir> TorchvisionResnet18::dir_;
uint64_t TorchvisionResnet18::seed_ = 0;
Shape TorchvisionResnet18::input_shape_;
std::string TorchvisionResnet18::weights_, TorchvisionResnet18::input_;

TEST_F(TorchvisionResnet18, LoadsThroughTheLibraryWithPyTorchsOutput) {
  nn::ModulePtr model = models::build("resnet18");
  io::load_state_dict(*model, weights_, "resnet18");
  model->eval();
  const Tensor y = model->forward(io::read_npy(input_));
  testing::expect_close(y, io::read_npy(fixture("resnet18/output_eval.npy")), 1e-4, "resnet18");
}

TEST_F(TorchvisionResnet18, LoadsThroughResnetRunWithPyTorchsOutput) {
  const std::string out = dir_->file("y.npy");
  auto r = run_cli("run --model resnet18 --weights " + weights_ + " --input " + input_ +
                   " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_close(io::read_npy(out), io::read_npy(fixture("resnet18/output_eval.npy")), 1e-4,
                        "resnet run resnet18");
}

TEST_F(TorchvisionResnet18, StateDictOfAnotherModelListsKeys) {
  // resnet34 has more blocks per stage: resnet18's file lacks them.
  expect_clean_failure(
      run_cli("run --model resnet34 --weights " + weights_ + " --input " + input_ + " --output " +
              dir_->file("y.npy")),
      {weights_, "resnet34", "missing", "layer1.2.conv1.weight", "more", "another model"});
  // resnet50 has bottlenecks: conv3 and bn3 are missing (its conv1, conv2 have other shapes).
  expect_clean_failure(
      run_cli("run --model resnet50 --weights " + weights_ + " --input " + input_ + " --output " +
              dir_->file("y.npy")),
      {weights_, "resnet50", "198 (", "layer1.0.conv3.weight", "missing", "none unexpected"});
  // The CIFAR resnet20 has three blocks per stage, no projections and no layer4: both
  // kinds at once.
  expect_clean_failure(run_cli("run --model resnet20 --weights " + weights_ + " --input " + input_ +
                               " --output " + dir_->file("y.npy")),
                       {weights_, "resnet20", "'layer1.2.conv1.weight'", "missing",
                        "'layer2.0.downsample.0.weight'", "unexpected"});
}

TEST_F(TorchvisionResnet18, WrongClassCountNamesTheShape) {
  expect_clean_failure(run_cli("run --model resnet18 --num-classes 10 --weights " + weights_ +
                               " --input " + input_ + " --output " + dir_->file("y.npy")),
                       {weights_, "fc.weight", "[10, 512]", "[1000, 512]"});
}

TEST_F(TorchvisionResnet18, TruncatedFileIsRefused) {
  const std::string full = testing::read_bytes(weights_);
  const std::string cut = dir_->file("cut.safetensors");
  {
    std::ofstream out(cut, std::ios::binary);
    out.write(full.data(), static_cast<std::streamsize>(full.size() / 2));
  }
  expect_clean_failure(run_cli("run --model resnet18 --weights " + cut + " --input " + input_ +
                               " --output " + dir_->file("y.npy")),
                       {cut, "truncated"});
}

// --- a state_dict PyTorch wrote ---

class TorchWrittenResnet20 : public ::testing::Test {
 protected:
  const std::string weights_ = interop_fixture("resnet20_torch.safetensors");
  const std::string input_ = interop_fixture("resnet20_input.npy");
  const std::string output_ = interop_fixture("resnet20_output.npy");
  testing::TempDir dir_;
};

TEST_F(TorchWrittenResnet20, TheFileIsPyTorchsNotOurs) {
  // Header keys in alphabetical order, metadata of a Python writer, running statistics
  // moved: the fixture tests what it claims to.
  const io::SafetensorsFile f = io::read_safetensors(weights_);
  nn::ModulePtr model = models::build("resnet20");
  auto state = model->state_dict();
  ASSERT_EQ(f.tensors.size(), state.size());
  EXPECT_TRUE(std::is_sorted(f.tensors.begin(), f.tensors.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; }));
  EXPECT_NE(f.tensors[0].first, state[0].first);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.find("bn1.num_batches_tracked")->i64()[0], 6);
}

TEST_F(TorchWrittenResnet20, LoadsThroughTheLibraryWithPyTorchsOutput) {
  nn::ModulePtr model = models::build("resnet20");
  io::load_state_dict(*model, weights_, "resnet20");
  model->eval();
  testing::expect_close(model->forward(io::read_npy(input_)), io::read_npy(output_), 1e-4,
                        "resnet20");
}

TEST_F(TorchWrittenResnet20, LoadsThroughResnetRunWithPyTorchsOutput) {
  const std::string out = dir_.file("y.npy");
  auto r = run_cli("run --model resnet20 --weights " + weights_ + " --input " + input_ +
                   " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_close(io::read_npy(out), io::read_npy(output_), 1e-4, "resnet run resnet20");
}

// F64, F16 and BF16 (and an I32 num_batches_tracked) are what half-precision or
// double-precision exports hold: they load, converted to f32 exactly as documented.
TEST_F(TorchWrittenResnet20, OtherDtypesLoadConverted) {
  const io::SafetensorsFile f = io::read_safetensors(weights_);
  const char* dtypes[] = {"F64", "F16", "BF16"};
  std::vector<testing::RawTensor> raw;
  std::map<std::string, std::vector<float>> expected;
  size_t next = 0;
  for (const auto& [name, t] : f.tensors) {
    if (t.dtype() == DType::i64) {
      std::string bytes;
      for (int64_t i = 0; i < t.numel(); ++i)
        testing::append_le<int32_t>(bytes, static_cast<int32_t>(t.i64()[i]));
      raw.push_back({name, "I32", t.shape(), bytes});
      continue;
    }
    const std::string dtype = dtypes[next++ % 3];
    testing::Converted c = testing::convert_floats(t, dtype);
    raw.push_back({name, dtype, t.shape(), c.bytes});
    expected[name] = c.expected;
  }
  const std::string path = dir_.file("mixed.safetensors");
  testing::write_raw_safetensors(path, raw);

  nn::ModulePtr model = models::build("resnet20");
  io::load_state_dict(*model, path);
  for (auto& [name, t] : model->state_dict()) {
    if (t->dtype() == DType::i64) {
      EXPECT_EQ(t->i64()[0], 6) << name;
      continue;
    }
    const std::vector<float>& e = expected.at(name);
    ASSERT_EQ(static_cast<size_t>(t->numel()), e.size());
    EXPECT_EQ(std::memcmp(t->f32(), e.data(), e.size() * sizeof(float)), 0) << name;
  }
  // The command line loads it too, and computes with the converted weights.
  model->eval();
  const Tensor want = model->forward(io::read_npy(input_));
  const std::string out = dir_.file("y.npy");
  auto r =
      run_cli("run --model resnet20 --weights " + path + " --input " + input_ + " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_close(io::read_npy(out), want, 1e-6, "resnet20 from F64/F16/BF16");
  // F16 rounding moves the output a little, but not far: it is still the same network.
  testing::expect_close(want, io::read_npy(output_), 2e-2, "F16 weights vs F32 weights");
}

TEST_F(TorchWrittenResnet20, StateDictOfAnotherModelListsKeys) {
  const std::string y = " --input " + input_ + " --output " + dir_.file("y.npy");
  // resnet32 has 5 blocks per stage where resnet20 has 3.
  expect_clean_failure(run_cli("run --model resnet32 --weights " + weights_ + y),
                       {weights_, "resnet32", "missing", "layer1.3.", "and ", "another model"});
  // With shortcut B the network has projection convolutions the file lacks.
  expect_clean_failure(run_cli("run --model resnet20 --shortcut B --weights " + weights_ + y),
                       {weights_, "missing", "downsample"});
}

TEST_F(TorchWrittenResnet20, LibraryNamesMissingAndUnexpectedKeys) {
  // resnet20's state_dict into resnet32 through the library, without the CLI: the same
  // message, and the module is left untouched.
  nn::ModulePtr model = models::build("resnet32");
  const float before = model->state_dict()[0].second->f32()[0];
  try {
    io::load_state_dict(*model, weights_, "resnet32");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const char* s : {"resnet32", "72 (", "missing", "layer1.3.bn1.bias", "none unexpected"})
      EXPECT_NE(m.find(s), std::string::npos) << s << " in: " << m;
  }
  EXPECT_EQ(model->state_dict()[0].second->f32()[0], before);
}

TEST_F(TorchWrittenResnet20, DataParallelPrefixIsExplained) {
  io::SafetensorsFile f = io::read_safetensors(weights_);
  for (auto& [name, t] : f.tensors) name = "module." + name;
  const std::string path = dir_.file("ddp.safetensors");
  io::write_safetensors(path, f.tensors);
  expect_clean_failure(run_cli("run --model resnet20 --weights " + path + " --input " + input_ +
                               " --output " + dir_.file("y.npy")),
                       {path, "unexpected", "'module.", "DataParallel"});
}

TEST_F(TorchWrittenResnet20, IntegerWeightsAreRefused) {
  io::SafetensorsFile f = io::read_safetensors(weights_);
  std::vector<testing::RawTensor> raw;
  for (const auto& [name, t] : f.tensors) {
    std::string bytes;
    if (name == "conv1.weight") {
      for (int64_t i = 0; i < t.numel(); ++i) testing::append_le<int32_t>(bytes, 1);
      raw.push_back({name, "I32", t.shape(), bytes});
    } else {
      bytes.assign(static_cast<const char*>(t.raw()), t.nbytes());
      raw.push_back({name, t.dtype() == DType::i64 ? "I64" : "F32", t.shape(), bytes});
    }
  }
  const std::string path = dir_.file("int.safetensors");
  testing::write_raw_safetensors(path, raw);
  expect_clean_failure(run_cli("run --model resnet20 --weights " + path + " --input " + input_ +
                               " --output " + dir_.file("y.npy")),
                       {path, "conv1.weight", "floating-point", "i64"});
}

}  // namespace
}  // namespace resnet
