#include "resnet/dist/communicator.h"

#include <cstring>

namespace resnet::dist {

namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void broadcast(std::span<std::byte>, int, const char*) override {}
  void allreduce_sum(std::span<double>, const char*) override {}
  void allreduce_sum(std::span<int64_t>, const char*) override {}
  std::vector<uint64_t> allgather(uint64_t value, const char*) override { return {value}; }
  RequestId start_allreduce_sum(std::span<float>, const char*) override { return 0; }
  bool test(RequestId) override { return true; }
  void wait(RequestId) override {}
  [[noreturn]] void abort(const std::string& line) override { RESNET_FAIL(line); }
};

}  // namespace

std::unique_ptr<Communicator> single_process() {
  return std::make_unique<SingleProcess>();
}

void broadcast_string(Communicator& comm, std::string& text, int root, const char* what) {
  int64_t size = static_cast<int64_t>(text.size());
  comm.broadcast(std::as_writable_bytes(std::span(&size, 1)), root, what);
  text.resize(static_cast<size_t>(size));
  comm.broadcast(std::as_writable_bytes(std::span(text.data(), text.size())), root, what);
}

std::string from_root(Communicator& comm, const char* what,
                      const std::function<std::string()>& make) {
  // The first byte says whether rank 0 succeeded; the rest is its result or its error.
  std::string message;
  if (comm.is_root()) {
    try {
      message = make();
      message.insert(message.begin(), '1');
    } catch (const Error& e) {
      message = e.what();
      message.insert(message.begin(), '0');
    }
  }
  if (!comm.distributed()) {
    if (message[0] == '0') throw Error(message.substr(1));
    return message.substr(1);
  }
  broadcast_string(comm, message, 0, what);
  if (message.empty() || message[0] != '1')
    throw AgreedError(message.empty() ? "" : message.substr(1));
  return message.substr(1);
}

void broadcast_tensors(Communicator& comm, std::span<Tensor* const> tensors, const char* what) {
  if (!comm.distributed()) return;
  for (Tensor* t : tensors) {
    RESNET_CHECK(
        t->dtype() == DType::f32 || t->dtype() == DType::i64,
        what << ": expected f32 or i64 tensors to broadcast, got " << dtype_name(t->dtype()));
    const size_t bytes = static_cast<size_t>(t->numel()) * dtype_size(t->dtype());
    std::byte* data = t->dtype() == DType::f32 ? reinterpret_cast<std::byte*>(t->f32())
                                               : reinterpret_cast<std::byte*>(t->i64());
    comm.broadcast(std::span(data, bytes), 0, what);
  }
}

uint64_t fnv1a(std::span<const std::byte> bytes, uint64_t hash) {
  for (std::byte b : bytes) {
    hash ^= static_cast<uint64_t>(b);
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace resnet::dist
