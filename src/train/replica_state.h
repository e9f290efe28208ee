#pragma once
// The data-parallel side of a training run's state: rank 0's restored state handed to
// every rank, the checksum that shows the replicas agree before a checkpoint, and the
// check that every rank was started alike.

#include <cstdint>

#include "resnet/dist/communicator.h"
#include "run_state.h"
#include "train_data.h"
#include "train_model.h"

namespace resnet::train {

// Rank 0's model, optimizer state, moving average and RunState on every rank (after rank
// 0 restored them from --out, or at a fresh start).
void share_root_state(dist::Communicator& comm, TrainingModel& model, RunState& state);

// Rank 0's BatchNorm running statistics on every rank, as PyTorch DDP broadcasts its
// buffers: with per-rank statistics they differ between ranks, and evaluation and the
// checkpoint use rank 0's.
void share_root_buffers(dist::Communicator& comm, TrainingModel& model);

// Stops every rank (AgreedError) unless all ranks hold the same weights, buffers,
// momentum and moving average.
void check_replicas_agree(dist::Communicator& comm, TrainingModel& model);

// Stops every rank unless all were started with the same configuration (except the
// per-machine --threads and --workers) and found the same data.
void check_same_start(dist::Communicator& comm, const TrainConfig& config,
                      const TrainingData& data);

}  // namespace resnet::train
