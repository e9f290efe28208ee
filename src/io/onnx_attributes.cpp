#include "onnx_attributes.h"

#include "resnet/core/error.h"

namespace resnet::io::detail {

namespace {

std::string type_name(int type) {
  if (onnx::AttributeProto_AttributeType_IsValid(type))
    return onnx::AttributeProto_AttributeType_Name(
        static_cast<onnx::AttributeProto_AttributeType>(type));
  return "type " + std::to_string(type);
}

}  // namespace

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

const onnx::AttributeProto* NodeAttributes::find(const std::string& name) const {
  for (const onnx::AttributeProto& a : node_.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

const onnx::AttributeProto* NodeAttributes::get(const std::string& name,
                                                onnx::AttributeProto_AttributeType type) const {
  const onnx::AttributeProto* a = find(name);
  if (!a) return nullptr;
  // Old exporters leave `type` unset (0); the field that holds the value then tells.
  RESNET_CHECK(a->type() == type || a->type() == onnx::AttributeProto_AttributeType_UNDEFINED,
               who_ << ": attribute '" << name << "' expected " << type_name(type) << ", found "
                    << type_name(a->type()));
  return a;
}

int64_t NodeAttributes::get_int(const std::string& name, int64_t fallback) const {
  const onnx::AttributeProto* a = get(name, onnx::AttributeProto_AttributeType_INT);
  return a ? a->i() : fallback;
}

double NodeAttributes::get_float(const std::string& name, double fallback) const {
  const onnx::AttributeProto* a = get(name, onnx::AttributeProto_AttributeType_FLOAT);
  return a ? a->f() : fallback;
}

std::string NodeAttributes::get_string(const std::string& name, const std::string& fallback) const {
  const onnx::AttributeProto* a = get(name, onnx::AttributeProto_AttributeType_STRING);
  return a ? a->s() : fallback;
}

std::vector<int64_t> NodeAttributes::get_ints(const std::string& name,
                                              const std::vector<int64_t>& fallback) const {
  const onnx::AttributeProto* a = get(name, onnx::AttributeProto_AttributeType_INTS);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

}  // namespace resnet::io::detail
