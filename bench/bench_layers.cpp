// Google Benchmark timings of single layers on the shapes of a CIFAR ResNet-20 training
// step (batch 128, 16 channels, 28x28), in both layouts.

#include <benchmark/benchmark.h>

#include "resnet/backend/activation_ops.h"
#include "resnet/backend/eltwise.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/init.h"

namespace {

using namespace resnet;

Tensor input(Layout layout) {
  Tensor x({128, 16, 28, 28});
  nn::init::uniform_(x, -1.f, 1.f);
  return backend::to_layout(x, layout);
}

void BM_BatchNormTrainForwardBackward(benchmark::State& state) {
  const Layout layout = state.range(0) ? Layout::blocked16 : Layout::plain;
  // range(2): mixed precision, as inside a residual block: the input, output gradient,
  // output and input gradient in bf16 (statistics and arithmetic in f32).
  const bool bf16 = state.range(2) != 0;
  nn::BatchNorm2d bn(16);
  bn.set_fused_relu(state.range(1) != 0);
  bn.train();
  Tensor x = input(layout);
  Tensor dy = input(layout);
  if (bf16) {
    x = backend::activation_convert(x, 1.f, DType::bf16, layout == Layout::blocked16);
    dy = backend::activation_convert(dy, 1.f, DType::bf16, layout == Layout::blocked16);
    bn.set_output_type(DType::bf16);
    bn.set_grad_input_type(DType::bf16);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(bn.forward(x));
    benchmark::DoNotOptimize(bn.backward(dy));
  }
  state.SetLabel(std::string(layout == Layout::blocked16 ? "blocked16" : "plain") +
                 (state.range(1) ? "+relu" : "") + (bf16 ? " bf16" : ""));
}
BENCHMARK(BM_BatchNormTrainForwardBackward)
    ->Args({0, 0, 0})
    ->Args({1, 0, 0})
    ->Args({1, 1, 0})
    ->Args({1, 1, 1})
    ->Unit(benchmark::kMillisecond);

void BM_Conv3x3TrainForwardBackward(benchmark::State& state) {
  const Layout layout = state.range(0) ? Layout::blocked16 : Layout::plain;
  nn::Conv2d conv(nn::Conv2dOptions::square(16, 16, 3, 1, 1, false));
  conv.train();
  Tensor x = input(layout);
  Tensor dy = input(layout);
  for (auto _ : state) {
    benchmark::DoNotOptimize(conv.forward(x));
    benchmark::DoNotOptimize(conv.backward(dy));
  }
  state.SetLabel(layout == Layout::blocked16 ? "blocked16" : "plain");
}
BENCHMARK(BM_Conv3x3TrainForwardBackward)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_AddRelu(benchmark::State& state) {
  Tensor a = input(Layout::blocked16), b = input(Layout::blocked16);
  for (auto _ : state) benchmark::DoNotOptimize(backend::add_relu(a, b));
}
BENCHMARK(BM_AddRelu)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
