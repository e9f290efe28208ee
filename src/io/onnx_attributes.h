#pragma once
// Typed access to an ONNX node's attributes, with the defaults the operator spec gives
// (private to src/io). A present attribute of the wrong type is an error, never a silent
// default; `who` prefixes every message ("model.onnx: node 'conv1' (Conv, opset 13)").

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace resnet::io::detail {

class NodeAttributes {
 public:
  NodeAttributes(const onnx::NodeProto& node, std::string who)
      : node_(node), who_(std::move(who)) {}

  bool has(const std::string& name) const { return find(name) != nullptr; }
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_float(const std::string& name, double fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name,
                                const std::vector<int64_t>& fallback) const;
  // The attribute itself, checked to be of `type`; nullptr when absent.
  const onnx::AttributeProto* get(const std::string& name,
                                  onnx::AttributeProto_AttributeType type) const;

 private:
  const onnx::AttributeProto* find(const std::string& name) const;

  const onnx::NodeProto& node_;
  std::string who_;
};

// "[1, 2, 3]": a list of ints as messages show it.
std::string ints_str(const std::vector<int64_t>& v);

}  // namespace resnet::io::detail
