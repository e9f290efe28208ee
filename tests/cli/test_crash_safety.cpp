// resnet train under kill -9, Ctrl-C and a full disk: SIGKILL at random moments (inside
// checkpoint writes too, with --save-every 1) and --resume each time end with the weights of
// an uninterrupted run, bit for bit; the same seed and threads give the same weights; a
// checkpoint write that fails leaves the previous checkpoint loadable.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_runner.h"
#include "resnet/io/safetensors.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;
using testing::make_temp_dir;
using testing::run_cli;

// A tiny run: 3 epochs of 8 batches of 8 random 8x8 images, saving every step.
struct TrainRun {
  explicit TrainRun(fs::path dir) : out(std::move(dir)) {}
  fs::path out;
  int epochs = 3;
  int threads = 1;
  int workers = 0;
  int save_every = 1;
  int max_steps = 0;
  bool resume = false;
  std::vector<std::string> extra;

  std::vector<std::string> args() const {
    std::vector<std::string> a = {"train",     "--model", "resnet20", "--data", "fake:1x8x8:4:64",
                                  "--batch",   "8",       "--seed",   "7",      "--out",
                                  out.string()};
    auto add = [&](const char* flag, int value) {
      a.push_back(flag);
      a.push_back(std::to_string(value));
    };
    add("--epochs", epochs);
    add("--threads", threads);
    add("--workers", workers);
    if (save_every > 0) add("--save-every", save_every);
    if (max_steps > 0) add("--max-steps", max_steps);
    if (resume) a.push_back("--resume");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

std::string shell_words(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += " '" + a + "'";
  return s;
}

testing::CliResult train(const TrainRun& r) {
  return run_cli(shell_words(r.args()));
}

// The run under a file-size limit of 256 blocks (128 or 256 KB: resnet20's weights are about
// 1 MB, so a checkpoint write fails with EFBIG).
testing::CliResult run_with_file_size_limit(const TrainRun& r) {
  return run_cli("--version >/dev/null; sh -c \"ulimit -f 256; exec " + std::string(RESNET_BINARY) +
                 shell_words(r.args()) + "\"");
}

// Starts resnet with `args`, its output discarded; returns its pid.
pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    std::vector<char*> argv{const_cast<char*>(RESNET_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(RESNET_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// The tensors of a safetensors file, as bytes by name.
std::vector<std::pair<std::string, std::string>> tensor_bytes(const fs::path& path) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, t] : io::read_safetensors(path.string()).tensors)
    out.emplace_back(name, std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  return out;
}

void expect_same_tensors(const fs::path& a, const fs::path& b) {
  const auto x = tensor_bytes(a), y = tensor_bytes(b);
  ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].first, y[i].first);
    EXPECT_TRUE(x[i].second == y[i].second) << x[i].first << " differs: " << a << " vs " << b;
  }
}

TEST(CrashSafety, TwentySigkillsAndResumesEndWithTheUninterruptedWeights) {
  const fs::path root = make_temp_dir("sigkill");
  const auto reference_start = std::chrono::steady_clock::now();
  auto r = train(TrainRun{root / "reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double reference_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - reference_start)
          .count();

  // Set-up and a first step, to spread the kills over set-up, steps and saves.
  TrainRun first{root / "first"};
  first.max_steps = 1;
  const auto first_start = std::chrono::steady_clock::now();
  ASSERT_EQ(train(first).exit_code, 0);
  const double setup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - first_start)
          .count();

  TrainRun killed{root / "killed"};
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  // Each attempt trains for about a 24th of the run on average, so that the 20 kills fall
  // before the end. The times were measured on a machine whose load can change: a chain that
  // ends before 10 kills is started again, from nothing, with shorter attempts.
  double longest_ms = setup_ms + std::max(reference_ms - setup_ms, 0.0) / 12;
  int kills = 0, kills_in_saves = 0;
  for (int chain = 0; chain < 4; ++chain) {
    fs::remove_all(killed.out);
    kills = kills_in_saves = 0;
    std::uniform_real_distribution<double> moment(setup_ms / 2, longest_ms);
    for (int attempt = 0; attempt < 20; ++attempt) {
      killed.resume = fs::exists(killed.out / "config.json");
      const pid_t pid = spawn(killed.args());
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(moment(rng)));
      ::kill(pid, SIGKILL);
      const int status = wait_for(pid);
      if (!WIFSIGNALED(status)) {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
        break;  // finished before its kill
      }
      ++kills;
      // A kill early in set-up can come before the output folder exists.
      if (!fs::exists(killed.out)) continue;
      for (const auto& entry : fs::directory_iterator(killed.out)) {
        const std::string name = entry.path().filename().string();
        if (name.find(".next") != std::string::npos || name.find(".tmp-") != std::string::npos) {
          ++kills_in_saves;
          break;
        }
      }
      // Whatever the moment, each file there is whole (atomic writes).
      for (const char* f : {"last.safetensors", "last.state.safetensors", "best.safetensors"}) {
        if (fs::exists(killed.out / f)) {
          EXPECT_NO_THROW(io::read_safetensors((killed.out / f).string())) << f;
        }
      }
    }
    if (kills >= 10) break;
    longest_ms = std::max(setup_ms, longest_ms / 2);
  }
  killed.resume = true;
  r = train(killed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::printf(
      "%d kills (%d inside a checkpoint write; seed %u), reference run %.0f ms, set-up and one "
      "step %.0f ms\n",
      kills, kills_in_saves, seed, reference_ms, setup_ms);
  EXPECT_GE(kills, 10);
  expect_same_tensors(root / "reference" / "last.safetensors", killed.out / "last.safetensors");
  expect_same_tensors(root / "reference" / "last.state.safetensors",
                      killed.out / "last.state.safetensors");
  fs::remove_all(root);
}

TEST(CrashSafety, SameSeedAndThreadsGiveIdenticalWeights) {
  const fs::path root = make_temp_dir("determinism");
  for (const char* name : {"a", "b"}) {
    TrainRun r{root / name};
    r.threads = 2;
    r.workers = 2;
    r.save_every = 0;
    const auto result = train(r);
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
  expect_same_tensors(root / "a" / "last.safetensors", root / "b" / "last.safetensors");
  fs::remove_all(root);
}

TEST(CrashSafety, ResumeBeforeTheFirstCheckpointStartsFromTheConfig) {
  const fs::path root = make_temp_dir("resume_fresh");
  auto r = train(TrainRun{root / "reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A run killed before its first checkpoint: config.json only.
  TrainRun early{root / "early"};
  fs::create_directories(early.out);
  fs::copy_file(root / "reference" / "config.json", early.out / "config.json");
  early.resume = true;
  r = train(early);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("resume: no checkpoint in " + early.out.string() +
                       " yet; starting the run from its config.json"),
            std::string::npos)
      << r.out;
  expect_same_tensors(root / "reference" / "last.safetensors", early.out / "last.safetensors");
  fs::remove_all(root);
}

TEST(CrashSafety, AMismatchedPairIsRefused) {
  const fs::path root = make_temp_dir("mismatch");
  TrainRun r{root / "run"};
  r.max_steps = 3;
  ASSERT_EQ(train(r).exit_code, 0);
  fs::copy_file(r.out / "last.state.safetensors", root / "state_at_3");
  r.resume = true;
  ASSERT_EQ(train(r).exit_code, 0);  // now at step 6
  fs::copy_file(root / "state_at_3", r.out / "last.state.safetensors",
                fs::copy_options::overwrite_existing);
  testing::expect_clean_failure(train(r), {"not from the same save", "last.safetensors"});
  fs::remove_all(root);
}

// A save killed between its steps (checkpoint_pair.h), made by hand from the pairs saved at
// steps 5 and 10: each case resumes at step 10 and ends with the uninterrupted weights.
TEST(CrashSafety, AnInterruptedSaveIsCompletedOrUndoneOnResume) {
  const fs::path root = make_temp_dir("interrupted_save");
  ASSERT_EQ(train(TrainRun{root / "reference"}).exit_code, 0);
  TrainRun partial{root / "partial"};
  partial.max_steps = 5;
  ASSERT_EQ(train(partial).exit_code, 0);
  const fs::path at5 = root / "at5", at10 = root / "at10";
  fs::copy(partial.out, at5, fs::copy_options::recursive);
  partial.resume = true;
  ASSERT_EQ(train(partial).exit_code, 0);
  fs::copy(partial.out, at10, fs::copy_options::recursive);
  const std::string weights = "last.safetensors", state = "last.state.safetensors";
  struct Case {
    const char* name;
    std::vector<std::pair<fs::path, std::string>> files;  // source, name in --out
  };
  const std::vector<Case> cases = {
      {"both_pending",
       {{at5 / weights, weights},
        {at5 / state, state},
        {at10 / weights, weights + ".next"},
        {at10 / state, state + ".next"}}},
      {"state_pending",
       {{at10 / weights, weights}, {at5 / state, state}, {at10 / state, state + ".next"}}},
      {"weights_pending",
       {{at10 / weights, weights}, {at10 / state, state}, {at5 / weights, weights + ".next"}}},
  };
  for (const Case& c : cases) {
    TrainRun resumed{root / c.name};
    fs::copy(at10, resumed.out, fs::copy_options::recursive);
    for (const auto& [source, name] : c.files)
      fs::copy_file(source, resumed.out / name, fs::copy_options::overwrite_existing);
    resumed.resume = true;
    const auto r = train(resumed);
    ASSERT_EQ(r.exit_code, 0) << c.name << ": " << r.err;
    EXPECT_NE(r.out.find("at epoch 2, batch 2 (step 10)"), std::string::npos) << c.name << r.out;
    EXPECT_FALSE(fs::exists(resumed.out / (weights + ".next"))) << c.name;
    EXPECT_FALSE(fs::exists(resumed.out / (state + ".next"))) << c.name;
    expect_same_tensors(root / "reference" / weights, resumed.out / weights);
  }
  fs::remove_all(root);
}

TEST(CrashSafety, AFailedCheckpointWriteLeavesThePreviousOneAndStops) {
  const fs::path root = make_temp_dir("full_disk");
  TrainRun r{root / "run"};
  r.max_steps = 2;
  ASSERT_EQ(train(r).exit_code, 0);
  const auto before = tensor_bytes(r.out / "last.safetensors");
  r.resume = true;
  auto result = run_with_file_size_limit(r);
  testing::expect_clean_failure(result, {"checkpoint not saved", "File too large", "is intact"});
  EXPECT_TRUE(before == tensor_bytes(r.out / "last.safetensors"));
  for (const auto& entry : fs::directory_iterator(r.out)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    EXPECT_EQ(name.find(".next"), std::string::npos) << name;
  }
  // The previous checkpoint still resumes.
  r.max_steps = 0;
  result = train(r);
  ASSERT_EQ(result.exit_code, 0) << result.err;

  // With --keep-going-on-write-error the run warns at each save and finishes.
  TrainRun keep{root / "keep_going"};
  keep.epochs = 1;
  ASSERT_EQ(train(keep).exit_code, 0);
  keep.epochs = 2;
  keep.resume = true;
  keep.extra = {"--keep-going-on-write-error"};
  result = run_with_file_size_limit(keep);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("warning: checkpoint not saved (training goes on)"), std::string::npos)
      << result.err;
  fs::remove_all(root);
}

// Ctrl-C: the batch finishes, last.* is saved, the status is 130; a second Ctrl-C kills.
TEST(CrashSafety, CtrlCSavesAndExitsWith130AndASecondOneKills) {
  const fs::path root = make_temp_dir("ctrl_c");
  TrainRun r{root / "run"};
  r.epochs = 200;
  r.save_every = 0;
  pid_t pid = spawn(r.args());
  // Into the training loop (past the first epoch) however loaded the machine is.
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(r.out / "last.state.safetensors") &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGINT);
  int status = wait_for(pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NO_THROW(io::read_safetensors((r.out / "last.safetensors").string()));
  // The second Ctrl-C, while the first one's batch is still running, kills at once.
  r.resume = true;
  pid = spawn(r.args());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ::kill(pid, SIGINT);
  ::kill(pid, SIGINT);
  status = wait_for(pid);
  EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) ||
              (WIFEXITED(status) && WEXITSTATUS(status) == 130))
      << "status " << status;
  fs::remove_all(root);
}

}  // namespace
}  // namespace resnet
