// What scripts/tsan.sh runs under ThreadSanitizer: the library used from several threads
// at once, as a server or a program training beside inference would. Two compiled
// models (f32 and bf16) run on two threads, a training step on a third, and a fourth
// keeps setting the process-wide thread count: the plan caches, the storage pool, the
// per-thread streams and scratchpads and the thread-count setting are all shared.
#include <cstdio>
#include <thread>
#include <vector>

#include "resnet/api/runtime.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/sgd.h"

using namespace resnet;

// A deterministic input of shape `s`.
static Tensor input(Shape s, float k) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>((i * 37 % 101) - 50) * k;
  return t;
}

int main() {
  set_num_threads(1);
  models::ModelOptions o;
  o.num_classes = 10;
  o.in_channels = 1;
  nn::ModulePtr a = models::build("resnet20", o);
  o.in_channels = 3;
  nn::ModulePtr b = models::build("resnet18", o);
  a->eval();
  b->eval();
  infer::CompiledModel ca(infer::lower_module(*a));
  infer::CompileOptions bf;
  bf.precision = infer::Precision::bf16;
  infer::CompiledModel cb(infer::lower_module(*b), bf);
  o.in_channels = 1;
  nn::ModulePtr t = models::build("resnet20", o);
  t->train();
  train::Sgd sgd(*t, train::SgdOptions{});
  std::vector<int64_t> labels(8, 3);
  std::thread t1([&] {
    for (int i = 0; i < 4; ++i) ca.run(input({4, 1, 28, 28}, 0.01f));
  });
  std::thread t2([&] {
    for (int i = 0; i < 4; ++i) cb.run(input({2, 3, 32, 32}, 0.02f));
  });
  std::thread t3([&] {
    for (int i = 0; i < 3; ++i) {
      sgd.zero_grad();
      Tensor y = t->forward(input({8, 1, 28, 28}, 0.01f));
      auto loss = train::cross_entropy(y, labels);
      t->backward(loss.grad_logits);
      sgd.step();
    }
  });
  std::thread t4([&] {
    for (int i = 0; i < 50; ++i) {
      set_num_threads(1);
      (void)num_threads();
    }
  });
  t1.join();
  t2.join();
  t3.join();
  t4.join();
  std::printf("tsan driver done\n");
}
