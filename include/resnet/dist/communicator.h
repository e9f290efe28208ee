#pragma once
// Communicator: what data-parallel training needs from a communication engine, and
// nothing more. The trainer and the layers talk only to this interface; the MPI
// implementation (src/mpi/, built into the command line when CMake finds MPI) is the only
// code that includes <mpi.h>, and single_process() is the case without MPI: every
// collective over one rank is the identity.
//
// Collectives must be called by every rank, in the same order. Each one waits at most the
// communicator's deadline; past it, the implementation prints one line saying which call
// timed out and aborts every rank (a rank that died or hangs must not hang the others).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/tensor/tensor.h"

namespace resnet::dist {

// A started non-blocking reduction (start_allreduce_sum).
using RequestId = int64_t;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process" or the engine and its version, for `resnet --version` and logs.
  virtual std::string describe() const = 0;

  // Blocking collectives; `what` names the call in a timeout message.
  virtual void broadcast(std::span<std::byte> data, int root, const char* what) = 0;
  virtual void allreduce_sum(std::span<double> data, const char* what) = 0;
  virtual void allreduce_sum(std::span<int64_t> data, const char* what) = 0;
  // Every rank's value, by rank.
  virtual std::vector<uint64_t> allgather(uint64_t value, const char* what) = 0;

  // Non-blocking in-place sum of floats over the ranks; `data` must stay alive and
  // untouched until wait() returns or test() says true.
  virtual RequestId start_allreduce_sum(std::span<float> data, const char* what) = 0;
  // Drives the reduction on; true once it is complete (then wait() returns at once).
  virtual bool test(RequestId request) = 0;
  // Blocks until complete, or aborts every rank past the deadline.
  virtual void wait(RequestId request) = 0;

  // Prints `line` (one line, on stderr) and ends every rank with a non-zero status.
  [[noreturn]] virtual void abort(const std::string& line) = 0;

  bool distributed() const { return size() > 1; }
  bool is_root() const { return rank() == 0; }
};

// One process: rank 0 of 1.
std::unique_ptr<Communicator> single_process();

// An error every rank found alike (bad arguments, ranks that disagree): rank 0 prints it,
// every rank exits with a non-zero status, none aborts the others.
class AgreedError : public Error {
 public:
  using Error::Error;
};

// Helpers over any communicator.

// Rank `root`'s string on every rank.
void broadcast_string(Communicator& comm, std::string& text, int root, const char* what);
// Runs `make` on rank 0 and hands its result to every rank; if it throws resnet::Error,
// every rank throws AgreedError with its message.
std::string from_root(Communicator& comm, const char* what,
                      const std::function<std::string()>& make);
// Rank 0's values of these f32/i64 tensors on every rank (same shapes everywhere).
void broadcast_tensors(Communicator& comm, std::span<Tensor* const> tensors, const char* what);
// 64-bit FNV-1a of bytes, continuing from `hash` (a checksum, not a cryptographic hash).
uint64_t fnv1a(std::span<const std::byte> bytes, uint64_t hash = 14695981039346656037ull);

}  // namespace resnet::dist
