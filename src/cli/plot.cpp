// resnet plot: figures from finished training runs, as SVG.
//   --runs DIR[=LABEL]...        training error against steps (steps.csv) and test error
//                                against epochs (metrics.csv), all runs in the same panels:
//                                He et al. 2015, figure 6, for plain vs residual networks.
//   --grad-norms DIR[=LABEL]...  each conv weight's gradient norm against its depth, at a
//                                few steps (grad_norms.csv), one panel per run, log scale.

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "command.h"
#include "resnet/core/error.h"
#include "resnet/train/plot_svg.h"

namespace resnet::cli {

namespace {

struct Run {
  std::string dir, label;
};

Run parse_run(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) {
    std::string label = arg;
    while (!label.empty() && label.back() == '/') label.pop_back();
    return {arg, label.substr(label.find_last_of('/') + 1)};
  }
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// Rows of a CSV file with a header, as name -> column of numbers (non-numeric columns
// are kept as text in `text`).
struct Csv {
  std::map<std::string, std::vector<double>> numbers;
  std::map<std::string, std::vector<std::string>> text;
};

Csv read_csv(const std::string& path) {
  std::ifstream in(path);
  RESNET_CHECK(in, path << ": cannot read (expected a file written by resnet train)");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> names;
  std::stringstream header(line);
  for (std::string n; std::getline(header, n, ',');) names.push_back(n);
  Csv csv;
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::stringstream row(line);
    size_t i = 0;
    for (std::string field; std::getline(row, field, ','); ++i) {
      RESNET_CHECK(i < names.size(),
                   path << ":" << line_no << ": expected " << names.size() << " fields");
      csv.text[names[i]].push_back(field);
      char* end = nullptr;
      const double v = std::strtod(field.c_str(), &end);
      csv.numbers[names[i]].push_back(end != field.c_str() && *end == '\0' ? v : std::nan(""));
    }
    RESNET_CHECK(i == names.size(),
                 path << ":" << line_no << ": expected " << names.size() << " fields, got " << i);
  }
  return csv;
}

const std::vector<double>& column(const Csv& csv, const std::string& name,
                                  const std::string& path) {
  auto it = csv.numbers.find(name);
  RESNET_CHECK(it != csv.numbers.end(), path << ": expected a column '" << name << "'");
  return it->second;
}

std::vector<double> error_percent(const std::vector<double>& accuracy) {
  std::vector<double> e;
  for (double a : accuracy) e.push_back(100.0 * (1.0 - a));
  return e;
}

std::vector<train::Chart> training_error_panels(const std::vector<Run>& runs) {
  train::Chart steps{"Training error", "step", "error (%)", {}, false, 0.0, std::nullopt};
  train::Chart epochs{"Test error", "epoch", "error (%)", {}, false, 0.0, std::nullopt};
  for (const Run& r : runs) {
    const std::string steps_path = r.dir + "/steps.csv", metrics_path = r.dir + "/metrics.csv";
    Csv s = read_csv(steps_path);
    steps.series.push_back({r.label, column(s, "step", steps_path),
                            error_percent(column(s, "train_acc", steps_path)), "", false});
    Csv m = read_csv(metrics_path);
    epochs.series.push_back({r.label, column(m, "epoch", metrics_path),
                             error_percent(column(m, "test_acc", metrics_path)), "", false});
  }
  return {steps, epochs};
}

std::vector<train::Chart> grad_norm_panels(const std::vector<Run>& runs,
                                           const std::vector<int64_t>& at_steps) {
  std::vector<train::Chart> panels;
  for (const Run& r : runs) {
    const std::string path = r.dir + "/grad_norms.csv";
    Csv csv = read_csv(path);
    const auto& step = column(csv, "step", path);
    const auto& depth = column(csv, "depth", path);
    const auto& norm = column(csv, "norm", path);
    train::Chart chart{r.label + ": gradient norm of each conv weight",
                       "depth (conv layer)",
                       "||dL/dW||",
                       {},
                       true,
                       std::nullopt,
                       std::nullopt};
    for (int64_t s : at_steps) {
      train::Series series{"step " + std::to_string(s), {}, {}, "", false};
      for (size_t i = 0; i < step.size(); ++i) {
        if (static_cast<int64_t>(step[i]) != s) continue;
        series.x.push_back(depth[i]);
        series.y.push_back(norm[i]);
      }
      RESNET_CHECK(!series.x.empty(),
                   path << ": expected gradient norms at step " << s << " (see --steps)");
      chart.series.push_back(series);
    }
    panels.push_back(chart);
  }
  return panels;
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("plot", "SVG figures from training runs (error curves, gradient norms)");
  auto runs = std::make_shared<std::vector<std::string>>();
  auto norms = std::make_shared<std::vector<std::string>>();
  auto steps = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{0, 10, 50});
  auto out = std::make_shared<std::string>();
  cmd->add_option("--runs", *runs, "Run directories (DIR or DIR=LABEL): error curves");
  cmd->add_option("--grad-norms", *norms,
                  "Run directories with grad_norms.csv: gradient norm by depth");
  cmd->add_option("--steps", *steps, "Steps to draw in --grad-norms panels")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--out", *out, "The SVG file to write")->required();
  cmd->callback([runs, norms, steps, out] {
    RESNET_CHECK(!runs->empty() || !norms->empty(),
                 "plot: expected --runs or --grad-norms, got neither");
    std::vector<Run> a, b;
    for (const auto& r : *runs) a.push_back(parse_run(r));
    for (const auto& r : *norms) b.push_back(parse_run(r));
    std::vector<train::Chart> panels;
    if (!a.empty()) panels = training_error_panels(a);
    for (auto& p : grad_norm_panels(b, *steps)) panels.push_back(p);
    train::write_svg(*out, panels, 2);
  });
}

}  // namespace resnet::cli
