// Allreduce bandwidth between the ranks of an MPI job, over message sizes: the figure the
// cost model of data-parallel training (README, "resnet train over MPI") starts from.
//
//   mpirun -np 2 ./build/bench_allreduce [--max-mb 64] [--seconds 0.5]
//
// For each size (4 KB to --max-mb, times 4), rank 0 prints the mean time of an in-place
// MPI_Allreduce (sum) of floats, the algorithm bandwidth (bytes / time) and the bus
// bandwidth (2 (N - 1) / N * bytes / time, what a ring allreduce moves per rank, the
// figure that compares across rank counts, as nccl-tests reports it).

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double max_mb = 64, seconds = 0.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--max-mb") == 0) max_mb = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
  }
  if (rank == 0)
    std::printf("%d ranks\n%12s %12s %14s %14s\n", size, "bytes", "time (us)", "algbw (GB/s)",
                "busbw (GB/s)");
  for (size_t bytes = 4096; bytes <= static_cast<size_t>(max_mb * 1024 * 1024); bytes *= 4) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    const int count = static_cast<int>(data.size());
    // Warm up, then agree on an iteration count that lasts about `seconds`.
    MPI_Allreduce(MPI_IN_PLACE, data.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double start = now();
    MPI_Allreduce(MPI_IN_PLACE, data.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double once = now() - start;
    MPI_Allreduce(MPI_IN_PLACE, &once, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const int iterations = std::max(3, static_cast<int>(seconds / std::max(once, 1e-6)));
    MPI_Barrier(MPI_COMM_WORLD);
    start = now();
    for (int i = 0; i < iterations; ++i)
      MPI_Allreduce(MPI_IN_PLACE, data.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t = (now() - start) / iterations;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
      const double algbw = static_cast<double>(bytes) / t / 1e9;
      std::printf("%12zu %12.1f %14.2f %14.2f\n", bytes, t * 1e6, algbw,
                  algbw * 2.0 * (size - 1) / size);
    }
  }
  MPI_Finalize();
  return 0;
}
