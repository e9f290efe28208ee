#pragma once
// Runs the resnet executable as a user would and captures what it printed.

#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cstdlib>

namespace resnet::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

// `args` is appended to the binary's path as shell words (quote them yourself).
inline CliResult run_cli(const std::string& args) {
  static int counter = 0;
  auto dir = std::filesystem::temp_directory_path();
  std::string tag = std::to_string(::getpid()) + "_" + std::to_string(counter++);
  auto out_path = dir / ("resnet_cli_out_" + tag);
  auto err_path = dir / ("resnet_cli_err_" + tag);
  std::string cmd = std::string(RESNET_BINARY) + " " + args + " >" + out_path.string() + " 2>" +
                    err_path.string();
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

// A fresh empty directory under the system's temporary directory.
inline std::filesystem::path make_temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("resnet_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A failure as the command line promises it: one line on stderr, a non-zero exit (not a
// signal), and every expected fragment in the message.
inline void expect_clean_failure(const CliResult& r, const std::vector<std::string>& fragments) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal";
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line, got:\n" << r.err;
  for (const auto& f : fragments)
    EXPECT_NE(r.err.find(f), std::string::npos) << "missing '" << f << "' in: " << r.err;
}

}  // namespace resnet::testing
