#include "fuzz_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "resnet/backend/threads.h"

namespace resnet::fuzz {

namespace {

std::map<std::string, std::string>& scratch_paths() {
  static std::map<std::string, std::string> paths;
  return paths;
}

void remove_scratch_files() {
  for (const auto& [suffix, path] : scratch_paths()) std::remove(path.c_str());
}

std::string scratch_dir() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

}  // namespace

void pin_one_thread() {
  setenv("OMP_NUM_THREADS", "1", 1);
  backend::set_num_threads(1);
}

const std::string& scratch_file(const uint8_t* data, size_t size, const std::string& suffix) {
  auto& paths = scratch_paths();
  auto it = paths.find(suffix);
  if (it == paths.end()) {
    if (paths.empty()) std::atexit(remove_scratch_files);
    const std::string path = scratch_dir() + "/resnet-fuzz-" + std::to_string(getpid()) + "-" +
                             std::to_string(paths.size()) + suffix;
    it = paths.emplace(suffix, path).first;
  }
  const int fd = open(it->second.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) std::abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  close(fd);
  return it->second;
}

}  // namespace resnet::fuzz
