// resnet export: a model (zoo name or checkpoint) as an ONNX file that ONNX Runtime,
// OpenCV DNN and onnx.checker accept, with BN kept as its own nodes so that the
// initializers carry the state_dict names.

#include <cstdio>
#include <string>

#include "command.h"
#include "model_loading.h"
#include "resnet/api/model.h"
#include "resnet/core/error.h"
#include "resnet/io/onnx.h"

namespace resnet::cli {

namespace {
struct ExportArgs {
  std::string model, weights, onnx;
  int64_t size = 0;  // 0: symbolic H and W
  models::ModelOptions options;
};

void export_onnx(const ExportArgs& a) {
  const Model model = Model::load(a.model, {a.weights, a.options});
  infer::Graph graph;
  try {
    graph = model.graph(a.size);
  } catch (const Error& e) {
    RESNET_FAIL("--size " << a.size << ": " << e.what());
  }
  io::write_onnx(graph, a.onnx);
  if (is_onnx_path(a.model)) {
    // Re-export of an imported file: PyTorch's graph written the way we write ours.
    std::printf("wrote %s: %s, %zu nodes, %zu parameters, opset 13\n", a.onnx.c_str(),
                a.model.c_str(), graph.nodes.size(), graph.all_params().size());
    return;
  }
  const std::string h = a.size > 0 ? std::to_string(a.size) : "H";
  const std::string w = a.size > 0 ? std::to_string(a.size) : "W";
  std::printf("wrote %s: %s, %zu nodes, %zu parameters, opset 13, input [N, %lld, %s, %s]\n",
              a.onnx.c_str(), model.name().c_str(), graph.nodes.size(), graph.all_params().size(),
              static_cast<long long>(model.in_channels()), h.c_str(), w.c_str());
}
}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write a model as ONNX (opset 13): BN kept as nodes, parameters as initializers under "
      "their state_dict names, input 'input' [N, C, H, W], output 'output'");
  auto a = std::make_shared<ExportArgs>();
  cmd->add_option("--model", a->model,
                  "Zoo name (resnet18, resnet20, block:IN,OUT[,STRIDE], ...) or .safetensors "
                  "checkpoint")
      ->required();
  cmd->add_option("--weights", a->weights,
                  "state_dict as .safetensors (strict load; default: the checkpoint's own "
                  "weights, or a zoo model's random initialization)");
  cmd->add_option("--onnx", a->onnx, "Where to write the .onnx file (replaced atomically)")
      ->required();
  cmd->add_option("--size", a->size,
                  "Fix the input's height and width to S (default: symbolic H and W)")
      ->check(CLI::PositiveNumber);
  add_model_options(cmd, a->options);
  cmd->callback([a] { export_onnx(*a); });
}

}  // namespace resnet::cli
