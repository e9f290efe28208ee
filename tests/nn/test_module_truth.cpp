// The module tree tells the truth: the modules that print are the modules that run (a
// ReLU fused into the BN before it, or into the residual add, is still reported as its
// ReLU module's forward), and errors name a module by its path in the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/infer/compile_chain.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/freeze.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/resnet.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

Tensor plain(const Tensor& t) {
  return backend::to_layout(t, Layout::plain);
}

struct Event {
  nn::Module* module;
  Tensor input, output;
};

// The forward events of one forward pass, in the order they were reported.
std::vector<Event> observe(nn::Module& model, const Tensor& x, Tensor* output = nullptr) {
  std::vector<Event> events;
  nn::ForwardObserverGuard guard([&](nn::Module& m, const Tensor& in, const Tensor& out) {
    events.push_back({&m, plain(in), plain(out)});
  });
  Tensor y = model.forward(x);
  if (output) *output = y;
  return events;
}

bool is_relu(const Event& e) {
  return dynamic_cast<nn::ReLU*>(e.module) != nullptr;
}

// Every ReLU call is seen, with output max(0, input); one right after a BN (but the
// last of a BasicBlock) reads that BN's output.
void expect_relus_seen(const std::vector<Event>& events, int64_t expected_calls,
                       const std::string& what) {
  int64_t calls = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!is_relu(events[i])) continue;
    ++calls;
    const Event& e = events[i];
    ASSERT_EQ(e.input.shape(), e.output.shape()) << what;
    auto in = std::as_const(e.input).values();
    auto out = std::as_const(e.output).values();
    for (size_t k = 0; k < in.size(); ++k)
      ASSERT_EQ(out[k], std::max(0.f, in[k])) << what << " " << e.module->path() << " at " << k;
    // (A BasicBlock's final ReLU reads the sum bn2(...) + shortcut, not bn2's output.)
    const bool after_bn = i > 0 && dynamic_cast<nn::BatchNorm2d*>(events[i - 1].module);
    if (after_bn && !events[i - 1].module->path().ends_with(".bn2")) {
      auto bn_out = std::as_const(events[i - 1].output).values();
      ASSERT_TRUE(std::equal(bn_out.begin(), bn_out.end(), in.begin()))
          << what << " " << events[i - 1].module->path() << " " << e.module->path();
      // The BN reports its own output, before the ReLU: some of it is negative.
      EXPECT_LT(*std::min_element(bn_out.begin(), bn_out.end()), 0.f) << what;
    }
  }
  EXPECT_EQ(calls, expected_calls) << what;
}

struct Case {
  const char* model;
  Shape input;
  int64_t relu_calls;  // the stem's, and two per BasicBlock
};

class ReluObserved : public ::testing::TestWithParam<Case> {};

TEST_P(ReluObserved, InEveryMode) {
  const Case c = GetParam();
  auto model = models::build(c.model, {.num_classes = 10});
  const Tensor x = testing::random_tensor(c.input, 5);
  model->eval();
  expect_relus_seen(observe(*model, x), c.relu_calls, std::string(c.model) + " eval");
  {
    // With gradients the ReLUs run fused; observing changes no number.
    nn::GradEnabledGuard grad(true);
    Tensor observed, unobserved = model->forward(x);
    expect_relus_seen(observe(*model, x, &observed), c.relu_calls,
                      std::string(c.model) + " eval with gradients");
    testing::expect_close(observed, unobserved, 0.0, "observed logits");
  }
  model->train();
  expect_relus_seen(observe(*model, x), c.relu_calls, std::string(c.model) + " train");
  model->backward(testing::random_tensor({c.input[0], 10}, 6));
}

INSTANTIATE_TEST_SUITE_P(Zoo, ReluObserved,
                         ::testing::Values(Case{"resnet18", {2, 3, 64, 64}, 17},
                                           Case{"resnet20", {2, 3, 32, 32}, 19}),
                         [](const auto& info) { return std::string(info.param.model); });

TEST(ReluObserved, FrozenPrefixIsObservedModuleByModule) {
  auto model = models::build("resnet18", {.num_classes = 10});
  nn::freeze(*model, "conv1,bn1,layer1");
  auto& net = static_cast<nn::ResNet&>(*model);
  net.set_input_grad(false);
  net.set_prefix_compiler(infer::compile_chain);
  model->train();
  const Tensor x = testing::random_tensor({2, 3, 64, 64}, 5);
  Tensor compiled = plain(model->forward(x));
  model->backward(testing::random_tensor({2, 10}, 6));
  Tensor observed;
  auto events = observe(*model, x, &observed);
  expect_relus_seen(events, 17, "frozen prefix");
  EXPECT_EQ(events.front().module->path(), "conv1");
  testing::expect_close(plain(observed), compiled, 1e-4, "compiled against module by module");
  model->backward(testing::random_tensor({2, 10}, 6));
}

TEST(ReluObserved, FrozenPrefixCompilesOnceAndAgainWhenItsWeightsChange) {
  auto model = models::build("resnet20", {.num_classes = 10});
  nn::freeze(*model, "conv1,bn1,layer1");
  auto& net = static_cast<nn::ResNet&>(*model);
  net.set_input_grad(false);
  int compiles = 0;
  net.set_prefix_compiler([&](const nn::ModuleChain& chain) {
    ++compiles;
    EXPECT_EQ(chain.size(), 3u + 3u);  // conv1, bn1, relu, layer1.0 .. layer1.2
    return infer::compile_chain(chain);
  });
  model->train();
  const Tensor x = testing::random_tensor({2, 3, 16, 16}, 5);
  for (int step = 0; step < 3; ++step) {
    model->forward(x);
    model->backward(testing::random_tensor({2, 10}, 6));
  }
  EXPECT_EQ(compiles, 1);
  for (auto& [name, t] : model->state_dict())
    if (name == "layer1.0.conv1.weight") t->fill(0.5f);
  model->forward(x);
  EXPECT_EQ(compiles, 2);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ModulePaths, ErrorsNameThePath) {
  auto model = models::build("resnet18");
  nn::Module* layer3 = nullptr;
  for (auto& [name, m] : model->named_modules())
    if (name == "layer3") layer3 = m;
  ASSERT_NE(layer3, nullptr);
  EXPECT_EQ(layer3->path(), "layer3");
  const Tensor wrong = testing::random_tensor({1, 64, 8, 8}, 1);
  for (bool training : {false, true}) {
    model->train(training);
    const std::string message = error_of([&] { layer3->forward(wrong); });
    EXPECT_NE(message.find("layer3.0.conv1: expected input with 128 channels, got 64"),
              std::string::npos)
        << message;
  }
  // Every module knows its path; the root has none and is named by its type.
  for (auto& [name, m] : model->named_modules()) EXPECT_EQ(m->path(), name);
  EXPECT_EQ(model->path(), "");
  EXPECT_NE(error_of([&] {
              model->forward(testing::random_tensor({1, 1, 8, 8}, 1));
            }).find("ResNet: expected input [N, 3, H, W]"),
            std::string::npos);
}

TEST(ModulePaths, StandaloneModulesNameThemselves) {
  nn::BatchNorm2d bn(4);
  EXPECT_NE(error_of([&] {
              bn.forward(Tensor({1, 3, 2, 2}));
            }).find("BatchNorm2d(4): expected input with 4 channels, got 3"),
            std::string::npos);
}

}  // namespace
}  // namespace resnet
