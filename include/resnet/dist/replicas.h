#pragma once
// Keeping the replicas of a data-parallel run identical: rank 0's state handed to every
// rank, checksums compared across the ranks, and BatchNorm statistics synchronised.

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/dist/communicator.h"
#include "resnet/nn/module.h"

namespace resnet::dist {

// Rank 0's parameters and buffers (its state_dict) on every rank.
void broadcast_module_state(Communicator& comm, nn::Module& module);

// A checksum of the tensors' values, in order (FNV-1a over their bytes).
uint64_t checksum(const std::vector<const Tensor*>& tensors);
// The checksum of a module's state_dict.
uint64_t module_checksum(nn::Module& module);

// Compares `value` across the ranks; where a rank's differs from rank 0's, every rank
// throws AgreedError: "<what>: rank R's ... differs from rank 0's" followed by `hint`.
void check_ranks_agree(Communicator& comm, uint64_t value, const std::string& what,
                       const std::string& hint);

// SyncBatchNorm: every BatchNorm2d of `model` normalizes with the statistics of the
// whole batch, all ranks' samples (BatchNorm2dKernel::set_cross_replica_sum). `comm`
// must outlive the model's training.
void synchronise_batchnorm(nn::Module& model, Communicator& comm);

}  // namespace resnet::dist
