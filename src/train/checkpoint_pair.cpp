#include "checkpoint_pair.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "resnet/core/error.h"

namespace resnet::train {

namespace {

namespace fs = std::filesystem;

std::string next_name(const std::string& path) {
  return path + ".next";
}

void rename_over(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  RESNET_CHECK(!ec,
               to << ": expected to rename " << from << " over it, got error: " << ec.message());
}

// Makes the renames durable, as io::AtomicFileWriter does for its own.
void sync_directory(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A kill inside io::AtomicFileWriter leaves its temporary file (".NAME.tmp-*") behind.
void remove_stray_temporaries(const std::string& path) {
  const fs::path file(path);
  std::string prefix = ".";
  prefix += file.filename().string();
  prefix += ".tmp-";
  std::error_code ec;
  const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) fs::remove(entry.path(), ec);
}

std::string id_of(const std::map<std::string, std::string>& metadata) {
  auto it = metadata.find(kCheckpointIdKey);
  return it == metadata.end() ? std::string() : it->second;
}

}  // namespace

std::string checkpoint_id(int64_t global_step, int64_t epoch) {
  return std::to_string(global_step) + "/" + std::to_string(epoch);
}

void save_checkpoint_pair(const CheckpointPairPaths& paths,
                          const std::function<void(const std::string&)>& write_weights,
                          const std::function<void(const std::string&)>& write_state) {
  const std::string weights_next = next_name(paths.weights);
  const std::string state_next = next_name(paths.state);
  std::error_code ec;
  try {
    write_weights(weights_next);
    write_state(state_next);
  } catch (...) {
    fs::remove(weights_next, ec);
    fs::remove(state_next, ec);
    throw;
  }
  rename_over(weights_next, paths.weights);
  rename_over(state_next, paths.state);
  sync_directory(paths.state);
}

bool recover_checkpoint_pair(const CheckpointPairPaths& paths) {
  const std::string weights_next = next_name(paths.weights);
  const std::string state_next = next_name(paths.state);
  const bool weights_pending = fs::exists(weights_next);
  const bool state_pending = fs::exists(state_next);
  if (weights_pending && state_pending) {
    rename_over(weights_next, paths.weights);
    rename_over(state_next, paths.state);
  } else if (weights_pending) {
    std::error_code ec;
    fs::remove(weights_next, ec);
  } else if (state_pending) {
    rename_over(state_next, paths.state);
  }
  if (weights_pending || state_pending) sync_directory(paths.state);
  for (const std::string& path : {paths.weights, paths.state, weights_next, state_next})
    remove_stray_temporaries(path);
  const bool weights = fs::exists(paths.weights), state = fs::exists(paths.state);
  RESNET_CHECK(weights == state, "--resume: expected " << paths.weights << " and " << paths.state
                                                       << " together, found only "
                                                       << (weights ? paths.weights : paths.state));
  return weights;
}

void check_checkpoint_pair(const CheckpointPairPaths& paths,
                           const std::map<std::string, std::string>& weights_metadata,
                           const std::map<std::string, std::string>& state_metadata) {
  const std::string weights_id = id_of(weights_metadata), state_id = id_of(state_metadata);
  if (weights_id.empty() && state_id.empty()) return;
  RESNET_CHECK(weights_id == state_id,
               "--resume: " << paths.weights << " (checkpoint " << weights_id << ") and "
                            << paths.state << " (checkpoint " << state_id
                            << ") are not from the same save (step/epoch); refusing to resume "
                               "from a mismatched pair");
}

}  // namespace resnet::train
