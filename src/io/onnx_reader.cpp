// read_onnx: the file and the model around the graph (size, protobuf, opset); the graph
// itself is onnx_importer.cpp's.
#include <filesystem>
#include <fstream>
#include <string>

#include "onnx_importer.h"
#include "resnet/core/error.h"
#include "resnet/io/onnx.h"

namespace resnet::io {

namespace {

// Protobuf cannot parse a message of 2 GiB or more; such models keep their weights in
// external data, which we do not read either.
constexpr uint64_t kMaxBytes = (uint64_t{1} << 31) - 1;
constexpr int64_t kMinOpset = 1, kMaxOpset = 18;

std::string read_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  RESNET_CHECK(!ec && std::filesystem::exists(status), path << ": cannot open: no such file");
  RESNET_CHECK(std::filesystem::is_regular_file(status),
               path << ": expected a regular file (an ONNX model), found something else");
  const uint64_t size = std::filesystem::file_size(path, ec);
  RESNET_CHECK(!ec, path << ": cannot read its size: " << ec.message());
  RESNET_CHECK(size <= kMaxBytes, path << ": " << size
                                       << " bytes, larger than the 2 GiB an ONNX "
                                          "protobuf can hold");
  RESNET_CHECK(size > 0, path << ": empty file, expected an ONNX model");
  std::ifstream in(path, std::ios::binary);
  RESNET_CHECK(in, path << ": cannot open for reading");
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  RESNET_CHECK(in.gcount() == static_cast<std::streamsize>(size),
               path << ": expected " << size << " bytes, read " << in.gcount());
  return bytes;
}

// The version of the default ("" or "ai.onnx") operator set the model imports.
int64_t default_opset(const onnx::ModelProto& model, const std::string& path) {
  int64_t version = -1;
  for (const onnx::OperatorSetIdProto& id : model.opset_import()) {
    if (id.domain().empty() || id.domain() == "ai.onnx") {
      RESNET_CHECK(version < 0, path << ": the default ONNX opset is imported twice");
      version = id.version();
    }
  }
  RESNET_CHECK(version >= 0, path << ": expected an import of the default ONNX opset, found none");
  RESNET_CHECK(version >= kMinOpset && version <= kMaxOpset,
               path << ": expected ONNX opset " << kMinOpset << " to " << kMaxOpset << ", found "
                    << version
                    << " (re-export with e.g. torch.onnx.export(..., opset_version=" << 13 << "))");
  return version;
}

}  // namespace

infer::Graph read_onnx(const std::string& path) {
  const std::string bytes = read_file(path);
  onnx::ModelProto model;
  RESNET_CHECK(model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())),
               path << ": not a valid ONNX model (the protobuf is truncated or corrupt)");
  // Random bytes sometimes parse as a protobuf of unknown fields; a model has a graph.
  RESNET_CHECK(model.has_graph(),
               path << ": not an ONNX model (no graph found; truncated or not an .onnx file?)");
  const int64_t opset = default_opset(model, path);
  return detail::Importer(path, opset, model.graph()).run();
}

}  // namespace resnet::io
