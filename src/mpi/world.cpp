#include "world.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#ifdef RESNET_WITH_MPI
#include <mpi.h>
#endif

namespace resnet::mpi {

#ifdef RESNET_WITH_MPI

namespace {

// Whether an MPI launcher started this process: without one, MPI is left alone, so that
// `resnet train` alone behaves exactly as in a build without MPI.
bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

// MPI's world. Every call is non-blocking and waited for with a deadline: a rank that died
// or hangs ends the run with one line instead of hanging the others. All calls come from
// the training thread (MPI_THREAD_FUNNELED).
class MpiWorld : public dist::Communicator {
 public:
  explicit MpiWorld(double timeout_seconds) : timeout_(timeout_seconds) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiWorld() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override {
    return "MPI, " + std::to_string(size_) + " ranks (" + support() + ")";
  }

  void broadcast(std::span<std::byte> data, int root, const char* what) override {
    constexpr size_t kChunk = size_t{1} << 30;  // MPI counts are int
    for (size_t offset = 0; offset < data.size(); offset += kChunk) {
      const int n = static_cast<int>(std::min(kChunk, data.size() - offset));
      MPI_Request request;
      check(MPI_Ibcast(data.data() + offset, n, MPI_BYTE, root, MPI_COMM_WORLD, &request), what);
      wait_for(request, what);
    }
  }
  void allreduce_sum(std::span<double> data, const char* what) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_DOUBLE,
                         MPI_SUM, MPI_COMM_WORLD, &request),
          what);
    wait_for(request, what);
  }
  void allreduce_sum(std::span<int64_t> data, const char* what) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_INT64_T,
                         MPI_SUM, MPI_COMM_WORLD, &request),
          what);
    wait_for(request, what);
  }
  std::vector<uint64_t> allgather(uint64_t value, const char* what) override {
    std::vector<uint64_t> all(static_cast<size_t>(size_));
    MPI_Request request;
    check(MPI_Iallgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD,
                         &request),
          what);
    wait_for(request, what);
    return all;
  }

  dist::RequestId start_allreduce_sum(std::span<float> data, const char* what) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_FLOAT,
                         MPI_SUM, MPI_COMM_WORLD, &request),
          what);
    const dist::RequestId id = next_id_++;
    pending_[id] = {request, what};
    return id;
  }
  bool test(dist::RequestId id) override {
    auto it = pending_.find(id);
    if (it == pending_.end()) return true;
    int done = 0;
    check(MPI_Test(&it->second.request, &done, MPI_STATUS_IGNORE), it->second.what);
    if (done) pending_.erase(it);
    return done != 0;
  }
  void wait(dist::RequestId id) override {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    wait_for(it->second.request, it->second.what);
    pending_.erase(it);
  }

  [[noreturn]] void abort(const std::string& line) override {
    std::fprintf(stderr, "resnet: error: rank %d of %d: %s\n", rank_, size_, line.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }

 private:
  struct Pending {
    MPI_Request request;
    const char* what;
  };

  void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    abort(std::string(what) + " failed: " + std::string(text, static_cast<size_t>(length)));
  }

  // Polls until done; sleeps between polls so that a waiting rank leaves the cores to
  // the ranks still computing. Past the deadline, every rank is stopped.
  void wait_for(MPI_Request& request, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (int polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout_) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "no answer from the other ranks in %.0f s (%s): a rank has died or hangs "
                      "(see its own message); stopping every rank",
                      timeout_, what);
        abort(line);
      }
      if (polls > 100) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  double timeout_;
  int rank_ = 0, size_ = 1;
  dist::RequestId next_id_ = 1;
  std::map<dist::RequestId, Pending> pending_;
};

}  // namespace

std::unique_ptr<dist::Communicator> world(double timeout_seconds) {
  if (!launched_by_mpirun()) return dist::single_process();
  return std::make_unique<MpiWorld>(timeout_seconds);
}

std::string support() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, static_cast<size_t>(length));
  version = version.substr(0, version.find_first_of(",\n"));
  return "MPI (" + version + ")";
}

#else

std::unique_ptr<dist::Communicator> world(double) {
  return dist::single_process();
}

std::string support() {
  return "no MPI";
}

#endif

}  // namespace resnet::mpi
