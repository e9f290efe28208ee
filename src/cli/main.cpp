// resnet: the command-line tool. Every failure ends as one line on stderr and a
// non-zero exit status.

#include <malloc.h>

#include <cstdio>
#include <exception>
#include <iostream>

#include "command.h"
#include "resnet/core/error.h"

namespace {

// Keeps freed memory in the heap instead of handing it back to the kernel. By default
// glibc serves blocks over 128 KiB (up to 32 MiB, adaptively) with mmap and unmaps them
// on free, so each training step faulted its buffers in afresh: when tensors still came
// from malloc, these settings took the resnet20 training benchmark (batch 128, 1x28x28)
// from 1100 to 1650-1740 images/s. Tensors now come from the storage pool
// (resnet/tensor/storage_pool.h); this still serves oneDNN's own buffers (reorder and
// weight-gradient temporaries, inference activation buffers).
void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();
  CLI::App app{"resnet: residual networks in C++, identical to PyTorch"};
  app.require_subcommand(1);
  resnet::cli::add_summary_command(app);
  resnet::cli::add_run_command(app);
  resnet::cli::add_bench_command(app);
  resnet::cli::add_eval_command(app);
  resnet::cli::add_predict_command(app);
  resnet::cli::add_train_command(app);
  resnet::cli::add_plot_command(app);
  resnet::cli::add_export_command(app);
  resnet::cli::add_quantize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "resnet: error: " << e.what() << " (see --help)\n";
    return e.get_exit_code() != 0 ? e.get_exit_code() : 2;
  } catch (const resnet::Error& e) {
    std::cerr << "resnet: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "resnet: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
