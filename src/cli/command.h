#pragma once
// Each subcommand lives in its own file and registers itself on the application.

#include <CLI/CLI.hpp>

namespace resnet::cli {

void add_summary_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace resnet::cli
