// resnet export: a model (zoo name or checkpoint) as an ONNX file that ONNX Runtime,
// OpenCV DNN and onnx.checker accept, with BN kept as its own nodes so that the
// initializers carry the state_dict names; a quantized model in QDQ form (BN folded, as
// int8 inference runs it), so that ONNX Runtime runs our int8 model.

#include <cstdio>
#include <string>

#include "command.h"
#include "model_loading.h"
#include "resnet/api/model.h"
#include "resnet/core/error.h"
#include "resnet/infer/quantized_export.h"
#include "resnet/io/onnx.h"

namespace resnet::cli {

namespace {
struct ExportArgs {
  std::string model, weights, onnx;
  int64_t size = 0;  // 0: symbolic H and W
  bool float_only = false;
  models::ModelOptions options;
};

// A quantized model (a checkpoint of `resnet quantize`, or a quantized ONNX file) is
// written in QDQ form unless --float says otherwise; says what it wrote.
infer::Graph quantized_or_float(const Model& model, infer::Graph graph, bool float_only) {
  if (float_only) {
    for (infer::Value& v : graph.values) v.quant.reset();
    for (infer::Node& n : graph.nodes) n.weight_steps.clear();
    return graph;
  }
  if (model.module() && model.calibration())
    graph = infer::quantized_export_graph(graph, *model.calibration());
  int grids = 0, convs = 0, unranged = 0;
  for (const infer::Value& v : graph.values) grids += v.quant.has_value();
  for (const infer::Node& n : graph.nodes) {
    if (n.op != infer::OpKind::conv || n.weight_steps.empty()) continue;
    ++convs;
    unranged += !graph.values[n.output].quant.has_value();
  }
  if (grids > 0) {
    std::printf("quantized (QDQ): %d values on int8 grids, %d convolutions with INT8 weights\n",
                grids, convs);
  }
  if (grids > 0 && unranged > 0) {
    std::fprintf(stderr,
                 "export: %d convolution results have no int8 range (a calibration made before "
                 "ranges inside fused adds were recorded): they stay float, and ONNX Runtime runs "
                 "those convolutions in float; run `resnet quantize` again to record them\n",
                 unranged);
  }
  return graph;
}

void export_onnx(const ExportArgs& a) {
  const Model model = Model::load(a.model, {a.weights, a.options});
  infer::Graph graph;
  try {
    graph = model.graph(a.size);
  } catch (const Error& e) {
    RESNET_FAIL("--size " << a.size << ": " << e.what());
  }
  graph = quantized_or_float(model, std::move(graph), a.float_only);
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
  cmd->add_flag("--float", a->float_only,
                "Write a quantized model (a `resnet quantize` checkpoint, a QDQ or QLinear "
                "file) as its float graph rather than in QDQ form");
  add_model_options(cmd, a->options);
  cmd->callback([a] { export_onnx(*a); });
}

}  // namespace resnet::cli
