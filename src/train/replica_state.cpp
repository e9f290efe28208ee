#include "replica_state.h"

#include <sstream>

#include "resnet/dist/replicas.h"

namespace resnet::train {

namespace {

std::string serialize(const std::map<std::string, std::string>& m) {
  std::string text;
  for (const auto& [key, value] : m) text += key + "=" + value + "\n";
  return text;
}

std::map<std::string, std::string> deserialize(const std::string& text) {
  std::map<std::string, std::string> m;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

}  // namespace

void share_root_state(dist::Communicator& comm, TrainingModel& model, RunState& state) {
  if (!comm.distributed()) return;
  dist::broadcast_module_state(comm, *model.model);
  // Momentum buffers exist on rank 0 after a restore; the others make them (any value)
  // so that they can receive rank 0's.
  int64_t buffers = static_cast<int64_t>(model.sgd->state_tensors().size());
  comm.broadcast(std::as_writable_bytes(std::span(&buffers, 1)), 0, "broadcast of SGD state");
  if (buffers > 0 && !comm.is_root()) {
    std::vector<std::pair<std::string, Tensor>> fresh;
    for (auto& [name, p] : model.model->named_parameters())
      if (p->requires_grad) fresh.emplace_back(Sgd::kBufferPrefix + name, Tensor(p->value.shape()));
    model.sgd->load_state(fresh);
  }
  std::vector<Tensor*> tensors;
  auto sgd_state = model.sgd->state_tensors();
  for (auto& [name, t] : sgd_state) tensors.push_back(&t);
  std::vector<std::pair<std::string, Tensor>> ema_state;
  if (model.ema) ema_state = model.ema->state_tensors();
  for (auto& [name, t] : ema_state) tensors.push_back(&t);
  dist::broadcast_tensors(comm, tensors, "broadcast of SGD and EMA state");
  std::string text = serialize(state_metadata(state));
  dist::broadcast_string(comm, text, 0, "broadcast of the run state");
  state = parse_state(deserialize(text), "rank 0's run state");
}

void share_root_buffers(dist::Communicator& comm, TrainingModel& model) {
  if (!comm.distributed()) return;
  std::vector<Tensor*> buffers;
  for (auto& [name, t] : model.model->named_buffers()) buffers.push_back(t);
  if (model.ema)
    for (auto& [name, t] : model.ema->module().named_buffers()) buffers.push_back(t);
  dist::broadcast_tensors(comm, buffers, "broadcast of rank 0's BatchNorm statistics");
}

void check_replicas_agree(dist::Communicator& comm, TrainingModel& model) {
  if (!comm.distributed()) return;
  std::vector<const Tensor*> tensors;
  for (auto& [name, t] : model.model->state_dict()) tensors.push_back(t);
  const auto sgd_state = model.sgd->state_tensors();
  for (const auto& [name, t] : sgd_state) tensors.push_back(&t);
  std::vector<std::pair<std::string, Tensor>> ema_state;
  if (model.ema) ema_state = model.ema->state_tensors();
  for (const auto& [name, t] : ema_state) tensors.push_back(&t);
  dist::check_ranks_agree(comm, dist::checksum(tensors), "train: weights before the checkpoint",
                          "the replicas diverged (no checkpoint written); check that every "
                          "host runs the same resnet binary and oneDNN library");
}

void check_same_start(dist::Communicator& comm, const TrainConfig& config,
                      const TrainingData& data) {
  if (!comm.distributed()) return;
  TrainConfig shared = config;
  shared.threads = 0;  // per machine: neither changes the batches
  shared.workers = 0;
  std::string text = shared.to_json() + "max_steps=" + std::to_string(config.max_steps);
  uint64_t h = dist::fnv1a(std::as_bytes(std::span(text.data(), text.size())));
  h = dist::fnv1a(std::as_bytes(std::span(&h, 1)), data_fingerprint(data));
  dist::check_ranks_agree(comm, h, "train: ranks started with different arguments or data",
                          "start every rank with the same arguments, and give every host the "
                          "same data at the same path");
}

}  // namespace resnet::train
