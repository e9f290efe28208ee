// resnet run: one forward pass (and optionally one backward pass) on tensors from .npy
// files, writing everything a port check against PyTorch compares.

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "command.h"
#include "inference.h"
#include "model_loading.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/npy.h"

namespace resnet::cli {

namespace {
struct RunArgs {
  std::string model, weights, input, output, dtype = "f32";
  bool train = false;
  std::string grad_output, grad_input, grads, state_out;
  models::ModelOptions options;
};

// A file that declares its input NHWC takes the arrays it declares: [N, H, W, C], read as
// the channels-last layout of [N, C, H, W] and reordered to plain NCHW (oneDNN).
Tensor nchw_from_nhwc(const Tensor& x, int64_t channels, const RunArgs& a) {
  RESNET_CHECK(x.rank() == 4 && x.dim(3) == channels,
               a.input << ": expected a 4-D input [N, H, W, " << channels << "] for " << a.model
                       << " (its input is declared NHWC), got " << x.shape_str());
  Tensor nhwc({x.dim(0), x.dim(3), x.dim(1), x.dim(2)}, DType::f32, Layout::channels_last);
  std::memcpy(nhwc.raw(), x.raw(), x.nbytes());
  return backend::to_plain_f32(nhwc, 1.f);
}

// A network's [N, C, H, W] input must have its channels; it runs at any size and batch.
// Another rank (a graph of tensor ops) must have the declared sizes after the batch.
void check_declared_input(const Tensor& x, const InferenceModel& m, const RunArgs& a) {
  const Shape& declared = m.graph.values[0].shape;
  if (declared.size() == 4) {
    RESNET_CHECK(x.rank() == 4 && x.dim(1) == m.in_channels,
                 a.input << ": expected a 4-D input [N, " << m.in_channels << ", H, W] for "
                         << a.model << ", got " << x.shape_str());
    return;
  }
  bool fits = x.shape().size() == declared.size();
  for (size_t i = 1; fits && i < declared.size(); ++i)
    fits = declared[i] == infer::kUnknownDim || declared[i] == x.shape()[i];
  std::string want = "[";
  for (size_t i = 0; i < declared.size(); ++i)
    want += (i ? ", " : "") + (i == 0 || declared[i] == infer::kUnknownDim
                                   ? std::string(i == 0 ? "N" : "?")
                                   : std::to_string(declared[i]));
  RESNET_CHECK(fits, a.input << ": expected an input " << want << "] for " << a.model << ", got "
                             << x.shape_str());
}

// Where each graph output goes: --output as given for a graph of one output (a path may
// hold commas), and a comma-separated list of one path per output for several.
std::vector<std::string> output_paths(const infer::Graph& g, const RunArgs& a) {
  const std::vector<int> outputs = g.outputs();
  if (outputs.size() == 1) return {a.output};
  std::vector<std::string> paths;
  for (size_t from = 0;;) {
    const size_t comma = a.output.find(',', from);
    paths.push_back(a.output.substr(from, comma - from));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  std::string names;
  for (int v : outputs) names += (names.empty() ? "'" : ", '") + g.values[v].name + "'";
  bool none_empty = true;
  for (const std::string& p : paths) none_empty = none_empty && !p.empty();
  RESNET_CHECK(paths.size() == outputs.size() && none_empty,
               "--output: expected " << outputs.size() << " comma-separated .npy paths for "
                                     << a.model << "'s outputs " << names << ", found "
                                     << paths.size() << " in '" << a.output << "'");
  return paths;
}

// An ONNX file has no module tree: one eval-mode forward through the compiled graph.
void run_onnx(const RunArgs& a) {
  RESNET_CHECK(!a.train && a.grad_output.empty() && a.state_out.empty(),
               a.model << ": an ONNX model runs forward in eval mode only; --train, "
                          "--grad-output and --state-out need a zoo model or a checkpoint");
  InferenceModel m = load_inference_model(a.model, a.weights, a.options);
  Tensor x = io::read_npy(a.input);
  if (m.graph.input_nhwc) x = nchw_from_nhwc(x, m.in_channels, a);
  check_declared_input(x, m, a);
  const std::vector<std::string> paths = output_paths(m.graph, a);
  infer::CompiledModel compiled(std::move(m.graph), compile_options(a.dtype, m.calibration));
  if (!compiled.fallback_note().empty()) std::cerr << compiled.fallback_note() << "\n";
  const std::vector<Tensor> outputs = compiled.run_outputs(x);
  for (size_t i = 0; i < outputs.size(); ++i)
    // u8 is what a bool output (a Dropout's mask) is held in; every other output is f32
    // or i64 (MaxPool's Indices).
    io::write_npy(paths[i], outputs[i],
                  outputs[i].dtype() == DType::u8 ? io::NpyBytes::as_bool : io::NpyBytes::as_u8);
}

void run(const RunArgs& a) {
  if (is_onnx_path(a.model)) return run_onnx(a);
  LoadedModel m = load_model(a.model, a.weights, a.options);
  if (a.dtype != "f32") {
    // bf16 and int8 run the compiled graph, as eval and predict do (int8: the quantized
    // checkpoint's calibration); f32 runs the module tree, the reference.
    RESNET_CHECK(!a.train && a.grad_output.empty() && a.state_out.empty(),
                 "--dtype " << a.dtype << ": runs forward in eval mode only");
    m.module->eval();
    Tensor x = io::read_npy(a.input);
    io::write_npy(a.output, make_forward(*m.module, a.dtype, m.calibration)(x));
    return;
  }
  nn::Module& model = *m.module;
  model.train(a.train);
  Tensor x = io::read_npy(a.input);
  const int64_t channels = models::expected_in_channels(m.name, m.options);
  RESNET_CHECK(x.rank() == 4 && x.dim(1) == channels,
               a.input << ": expected a 4-D input [N, " << channels << ", H, W] for " << m.name
                       << ", got " << x.shape_str());
  const bool backward = !a.grad_output.empty();
  RESNET_CHECK(backward || (a.grad_input.empty() && a.grads.empty()),
               "--grad-input and --grads: expected --grad-output as well, got none");
  nn::GradEnabledGuard grad_guard(backward);
  Tensor y = model.forward(x);
  io::write_npy(a.output, y);
  if (backward) {
    Tensor dy = io::read_npy(a.grad_output);
    RESNET_CHECK(dy.shape() == y.shape(), a.grad_output << ": expected the output's shape "
                                                        << y.shape_str() << ", got "
                                                        << dy.shape_str());
    model.zero_grad();
    Tensor dx = model.backward(dy);
    if (!a.grad_input.empty()) io::write_npy(a.grad_input, dx);
    if (!a.grads.empty()) io::save_gradients(model, a.grads);
  }
  if (!a.state_out.empty()) io::save_state_dict(model, a.state_out);
}
}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "One forward (and optional backward) pass on .npy tensors");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("--model", a->model,
                  "Zoo name, .safetensors checkpoint or .onnx file (forward only)")
      ->required();
  cmd->add_option("--weights", a->weights, "state_dict as .safetensors (strict load)");
  cmd->add_option("--input", a->input, "Input [N, C, H, W] as .npy (<f4)")->required();
  cmd->add_option("--output", a->output,
                  "Where to write the output .npy; for an ONNX model of several outputs, one "
                  "path per output, comma-separated (y.npy,indices.npy)")
      ->required();
  cmd->add_option("--dtype", a->dtype,
                  "f32 (default; a model runs its module tree), bf16 or int8 (the compiled graph; "
                  "int8 needs a quantized checkpoint or a quantized ONNX file)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_flag("--train", a->train,
                "Training mode (batch statistics; running statistics are updated)");
  cmd->add_option("--grad-output", a->grad_output, "Output gradient .npy: runs one backward pass");
  cmd->add_option("--grad-input", a->grad_input, "Where to write the input gradient .npy");
  cmd->add_option("--grads", a->grads, "Where to write every parameter's gradient (.safetensors)");
  cmd->add_option("--state-out", a->state_out,
                  "Where to write the state_dict after the pass (.safetensors)");
  add_model_options(cmd, a->options);
  cmd->callback([a] { run(*a); });
}

}  // namespace resnet::cli
