#include "resnet/api/model.h"

#include "resnet/api/model_loading.h"
#include "resnet/core/error.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/onnx.h"
#include "resnet/io/safetensors.h"

namespace resnet {

Model Model::load(const std::string& spec, const LoadOptions& options) {
  Model m;
  if (api::is_onnx_path(spec)) {
    api::InferenceModel onnx = api::load_inference_model(spec, options.weights, options.model);
    m.name_ = onnx.name;
    m.in_channels_ = onnx.in_channels;
    m.num_classes_ = onnx.num_classes;
    m.onnx_graph_ = std::move(onnx.graph);
    m.calibration_ = onnx.calibration;
    m.outputs_probabilities_ = infer::outputs_probabilities(m.onnx_graph_);
    return m;
  }
  api::LoadedModel loaded = api::load_model(spec, options.weights, options.model);
  loaded.module->eval();
  m.name_ = loaded.name;
  m.in_channels_ = models::expected_in_channels(loaded.name, loaded.options);
  m.num_classes_ = loaded.options.num_classes;
  m.module_ = loaded.module;
  m.calibration_ = loaded.calibration;
  m.metadata_ = api::checkpoint_metadata(loaded);
  if (spec.ends_with(".safetensors")) {
    // A checkpoint of resnet train keeps what it records (input size, normalization,
    // classes, dataset) through save().
    const std::map<std::string, std::string> metadata = io::read_safetensors(spec).metadata;
    if (auto info = api::recorded_checkpoint_info(metadata, spec)) {
      m.class_names_ = info->class_names;
      m.preprocessing_ = api::checkpoint_preprocessing(*info);
      for (const auto& [key, value] : info->to_metadata()) m.metadata_[key] = value;
    }
  }
  return m;
}

void Model::calibrate(const std::vector<Tensor>& batches) {
  RESNET_CHECK(!batches.empty(), name_ << ": calibrate: expected at least one batch, got none");
  infer::Calibrator calibrator(graph());
  for (const Tensor& batch : batches) calibrator.observe(batch);
  calibration_ = std::make_shared<infer::Calibration>(calibrator.result());
}

infer::CompiledModel Model::compile(Precision precision, infer::LayoutChoice layout) const {
  infer::CompileOptions options;
  options.precision = precision;
  options.layout = layout;
  if (precision == Precision::int8) {
    RESNET_CHECK(calibration_ != nullptr,
                 name_ << ": int8 needs a calibration: call Model::calibrate with representative "
                          "batches, or load a checkpoint written by `resnet quantize`");
    options.calibration = calibration_;
  }
  return infer::CompiledModel(graph(), options);
}

infer::Graph Model::graph(int64_t size) const {
  infer::Graph g = module_ ? infer::lower_module(*module_) : onnx_graph_;
  if (size > 0) {
    try {
      g.infer_shapes({1, in_channels_, size, size});
    } catch (const Error& e) {
      RESNET_FAIL(name_ << " cannot take a " << size << "x" << size << " input: " << e.what());
    }
  }
  return g;
}

void Model::save(const std::string& path) const {
  RESNET_CHECK(module_ != nullptr, path << ": cannot save " << name_
                                        << " as a state_dict: an ONNX import has no module "
                                           "tree (export_onnx writes it as ONNX)");
  std::map<std::string, std::string> metadata = metadata_;
  if (calibration_) metadata["int8_calibration"] = calibration_->to_json();
  io::save_state_dict(*module_, path, metadata);
}

void Model::export_onnx(const std::string& path, int64_t size) const {
  io::write_onnx(graph(size), path);
}

}  // namespace resnet
