#include "resnet/models/layer_table.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "resnet/nn/conv2d.h"
#include "resnet/nn/linear.h"

namespace resnet::models {

namespace {

struct Row {
  std::string name, type;
  Shape output;
  int64_t parameters = 0, macs = 0;
};

// 1234567 -> "1,234,567".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

int64_t own_parameters(nn::Module& m) {
  if (!m.named_children().empty()) return 0;
  return m.parameter_count();
}

int64_t macs_of(nn::Module& m, const Tensor& output) {
  if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
    const auto& o = conv->options();
    return output.numel() * (o.in_channels / o.groups) * o.kernel_h * o.kernel_w;
  }
  if (auto* linear = dynamic_cast<nn::Linear*>(&m)) {
    return output.numel() * linear->weight().value.dim(1);
  }
  return 0;
}

}  // namespace

std::string layer_table(nn::Module& model, const Shape& input_shape, LayerTableTotals* totals) {
  std::map<nn::Module*, std::string> names;
  for (auto& [name, m] : model.named_modules()) names[m] = name;
  std::vector<Row> rows;
  {
    // Eval mode without gradients: every module runs itself (a ReLU module once per
    // call, as torchvision calls it), and nothing is kept.
    nn::ForwardObserverGuard observe([&](nn::Module& m, const Tensor&, const Tensor& out) {
      if (!m.named_children().empty() || !names.count(&m)) return;
      rows.push_back({names[&m], m.type_name(), out.shape(), own_parameters(m), macs_of(m, out)});
    });
    const bool was_training = model.is_training();
    model.eval();
    model.forward(Tensor(input_shape));
    model.train(was_training);
  }
  LayerTableTotals t;
  t.parameters = model.parameter_count();
  size_t name_width = 20;
  for (const auto& r : rows) name_width = std::max(name_width, r.name.size() + r.type.size() + 3);
  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s %-22s %14s %18s\n", static_cast<int>(name_width),
                "Layer (type)", "Output shape", "Params", "MACs");
  s << line << std::string(name_width + 57, '-') << "\n";
  for (const auto& r : rows) {
    t.macs += r.macs;
    std::string label = r.name + " (" + r.type + ")";
    std::snprintf(line, sizeof line, "%-*s %-22s %14s %18s\n", static_cast<int>(name_width),
                  label.c_str(), shape_str(r.output).c_str(), grouped(r.parameters).c_str(),
                  grouped(r.macs).c_str());
    s << line;
  }
  s << std::string(name_width + 57, '-') << "\n";
  s << "Total params: " << grouped(t.parameters) << "\n";
  std::snprintf(line, sizeof line, "Total MACs: %s (%.2f G) for input %s\n",
                grouped(t.macs).c_str(), static_cast<double>(t.macs) / 1e9,
                shape_str(input_shape).c_str());
  s << line;
  if (totals) *totals = t;
  return s.str();
}

}  // namespace resnet::models
