#include "serve/served_model.h"

#include <filesystem>

#include "resnet/api/prediction.h"
#include "resnet/core/error.h"

namespace resnet::serve {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Precision precision_of(const std::string& dtype) {
  if (dtype == "bf16") return Precision::bf16;
  if (dtype == "int8") return Precision::int8;
  RESNET_CHECK(dtype == "f32", "--dtype: expected f32, bf16 or int8, got " << dtype);
  return Precision::f32;
}

// The size a preprocessing recipe gives its images ({0, 0}: the image's own, "none").
std::pair<int64_t, int64_t> output_size(const data::Preprocessing& p) {
  if (p.crop_height > 0) return {p.crop_height, p.crop_width};
  if (p.resize_height > 0) return {p.resize_height, p.resize_width};
  return {0, 0};
}

// The one [H, W] a model serves: what the file fixes (an ONNX input of fixed size), else
// --size, else what its /classify preprocessing yields, else 224 (ImageNet's crop).
std::pair<int64_t, int64_t> served_size(const Shape& declared, int64_t size_option,
                                        const std::optional<data::Preprocessing>& classify) {
  if (declared.size() == 4 && declared[2] != infer::kUnknownDim &&
      declared[3] != infer::kUnknownDim)
    return {declared[2], declared[3]};
  if (size_option > 0) return {size_option, size_option};
  if (classify && output_size(*classify).first > 0) return output_size(*classify);
  return {224, 224};
}

}  // namespace

std::pair<std::string, std::string> split_model_arg(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && valid_name(arg.substr(0, eq)))
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  const std::string stem = std::filesystem::path(arg).stem().string();
  RESNET_CHECK(valid_name(stem), "--model " << arg << ": expected a name of letters, digits, '_', "
                                            << "'.' and '-' for URLs, got '" << stem
                                            << "'; name it with --model NAME=" << arg);
  return {stem, arg};
}

ServedModel load_served_model(const std::string& arg, const ServeOptions& options,
                              std::unique_ptr<infer::CompiledModel>& engine) {
  ServedModel m;
  std::tie(m.name, m.source) = split_model_arg(arg);
  const Model model = Model::load(m.source, {.weights = "", .model = options.model_options});
  m.dtype = !options.dtype.empty() ? options.dtype : model.calibration() ? "int8" : "f32";
  m.random_weights = !m.source.ends_with(".safetensors") && !m.source.ends_with(".onnx");
  m.class_names = model.class_names();
  m.outputs_probabilities = model.outputs_probabilities();
  try {
    // The same choice as `resnet predict`'s, so an upload becomes the input it would.
    m.classify = choose_preprocessing(options.preprocess, model.preprocessing(),
                                      model.in_channels(), m.source);
  } catch (const Error& e) {
    m.classify_refusal = e.what();
  }
  infer::Graph graph = model.graph();
  const auto [height, width] = served_size(graph.values[0].shape, options.size, m.classify);
  m.image_shape = {model.in_channels(), height, width};
  if (m.classify) {
    const auto [h, w] = output_size(*m.classify);
    if (h > 0 && (h != height || w != width)) {
      m.classify_refusal = "its preprocessing (" + m.classify->describe() + ") gives " +
                           std::to_string(h) + "x" + std::to_string(w) + " images, and " + m.name +
                           " is served at " + std::to_string(height) + "x" + std::to_string(width);
      m.classify.reset();
    }
  }
  try {
    graph.infer_shapes({1, m.image_shape[0], height, width});
  } catch (const Error& e) {
    RESNET_FAIL("--model " << arg << ": cannot take a " << height << "x" << width
                           << " input (set --size): " << e.what());
  }
  const Shape& out = graph.values[graph.output].shape;
  m.output_shape.assign(out.begin() + 1, out.end());
  if (m.classify && m.output_shape.size() != 1) {
    m.classify_refusal = "its output " + shape_str(out) + " is not one score per class";
    m.classify.reset();
  }
  m.input_name = graph.values[0].name.empty() ? "input" : graph.values[0].name;
  m.output_name =
      graph.values[graph.output].name.empty() ? "output" : graph.values[graph.output].name;
  engine = std::make_unique<infer::CompiledModel>(model.compile(precision_of(m.dtype)));
  m.fallback_note = engine->fallback_note();
  return m;
}

}  // namespace resnet::serve
