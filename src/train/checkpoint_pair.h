#pragma once
// last.safetensors (the weights) and last.state.safetensors (optimizer and run state) as a
// pair that a kill at any moment cannot leave mismatched.
//
// save_checkpoint_pair writes the two files under ".next" names first (each atomically,
// io/atomic_file.h), then renames the weights' and then the state's over the old pair.
// recover_checkpoint_pair, run before --resume reads the pair, finishes or undoes a save
// that a kill interrupted:
//   both .next files present: the save was written but not renamed in: both are renamed in;
//   only the weights' .next: the state's was never written: it is removed, the old pair stays;
//   only the state's .next: the weights' was renamed in already: the state's follows it.
// Both files also record the same checkpoint id (checkpoint_id(): the optimizer step and the
// epoch), and check_checkpoint_pair refuses a pair whose ids differ, so that a mismatch made
// any other way (files copied by hand) cannot be resumed from either.

#include <functional>
#include <map>
#include <string>

namespace resnet::train {

struct CheckpointPairPaths {
  std::string weights;  // last.safetensors
  std::string state;    // last.state.safetensors
};

// The metadata key both files record the id under.
inline constexpr const char* kCheckpointIdKey = "checkpoint_id";

// "STEP/EPOCH": distinct for every save of a run (a save at an epoch's end records the
// next epoch, so it differs from a save at the same step inside the epoch).
std::string checkpoint_id(int64_t global_step, int64_t epoch);

// Writes the pair through `write_weights` and `write_state`, each given the path to write
// (atomically) to. On an error the old pair is left as it was, and the error is rethrown.
void save_checkpoint_pair(const CheckpointPairPaths& paths,
                          const std::function<void(const std::string&)>& write_weights,
                          const std::function<void(const std::string&)>& write_state);

// Completes or undoes an interrupted save (above). Afterwards either both files exist or
// neither was ever completed; returns whether a pair exists.
bool recover_checkpoint_pair(const CheckpointPairPaths& paths);

// Refuses a pair whose ids differ; files without an id (written before ids existed) pass.
void check_checkpoint_pair(const CheckpointPairPaths& paths,
                           const std::map<std::string, std::string>& weights_metadata,
                           const std::map<std::string, std::string>& state_metadata);

}  // namespace resnet::train
