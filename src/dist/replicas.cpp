#include "resnet/dist/replicas.h"

#include <sstream>

#include "resnet/nn/batchnorm2d.h"

namespace resnet::dist {

void broadcast_module_state(Communicator& comm, nn::Module& module) {
  if (!comm.distributed()) return;
  std::vector<Tensor*> tensors;
  for (auto& [name, t] : module.state_dict()) tensors.push_back(t);
  broadcast_tensors(comm, tensors, "broadcast of rank 0's weights");
}

uint64_t checksum(const std::vector<const Tensor*>& tensors) {
  uint64_t h = fnv1a({});
  for (const Tensor* t : tensors) {
    const auto* bytes = t->dtype() == DType::f32 ? reinterpret_cast<const std::byte*>(t->f32())
                                                 : reinterpret_cast<const std::byte*>(t->i64());
    h = fnv1a(std::span(bytes, t->nbytes()), h);
  }
  return h;
}

uint64_t module_checksum(nn::Module& module) {
  std::vector<const Tensor*> tensors;
  for (auto& [name, t] : module.state_dict()) tensors.push_back(t);
  return checksum(tensors);
}

void check_ranks_agree(Communicator& comm, uint64_t value, const std::string& what,
                       const std::string& hint) {
  if (!comm.distributed()) return;
  const std::vector<uint64_t> all = comm.allgather(value, what.c_str());
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    std::ostringstream line;
    line << what << ": rank " << r << "'s checksum " << std::hex << all[r]
         << " differs from rank 0's " << all[0] << std::dec << "; " << hint;
    throw AgreedError(line.str());
  }
}

void synchronise_batchnorm(nn::Module& model, Communicator& comm) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
      bn->set_cross_replica_sum(
          [&comm](std::span<double> sums) { comm.allreduce_sum(sums, "SyncBatchNorm sums"); });
    }
  }
}

}  // namespace resnet::dist
