// resnet: the command-line tool. Every failure ends as one line on stderr and a
// non-zero exit status.

#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <system_error>

#include "../mpi/world.h"
#include "command.h"
#include "fatal_signal.h"
#include "resnet/api/runtime.h"
#include "resnet/api/version.h"
#include "resnet/core/error.h"

int main(int argc, char** argv) {
  resnet::configure_allocator();  // keeps freed memory for reuse (see its comment)
  resnet::cli::install_fatal_signal_handlers();
  CLI::App app{"resnet: residual networks in C++, identical to PyTorch"};
  // The first line stays "resnet X.Y.Z" (scripts read it); what was built in follows.
  app.set_version_flag("--version", std::string("resnet ") + resnet::version() +
                                        "\ndata-parallel training: " + resnet::mpi::support());
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
  resnet::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "resnet: error: " << e.what() << " (see --help)\n";
    return e.get_exit_code() != 0 ? e.get_exit_code() : 2;
  } catch (const resnet::Error& e) {
    std::cerr << "resnet: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    // Under a memory limit (ulimit -v) or on a machine too small for the run.
    std::cerr << "resnet: error: out of memory: an allocation failed (the process's memory "
                 "limit, ulimit -v, or the machine's memory is too small for this run)\n";
    return 1;
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::resource_unavailable_try_again) {
      std::cerr << "resnet: internal error: " << e.what() << "\n";
      return 3;
    }
    // std::thread's EAGAIN: no memory for the thread's stack, or the thread limit.
    std::cerr << "resnet: error: out of memory: cannot start a thread (" << e.what()
              << "; under ulimit -v each thread's stack and malloc arena count)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "resnet: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
