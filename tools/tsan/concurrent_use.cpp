// What scripts/tsan.sh runs under ThreadSanitizer: the library used from several threads
// at once, as a server or a program training beside inference would. Two compiled
// models (f32 and bf16) run on two threads, a training step on a third, and a fourth
// keeps setting the process-wide thread count: the plan caches, the storage pool, the
// per-thread streams and scratchpads and the thread-count setting are all shared. A fifth
// reads batches from a data loader with two worker threads, abandoning an epoch half-way
// as a resumed run does.
#include <cstdio>
#include <thread>
#include <vector>

#include "resnet/api/runtime.h"
#include "resnet/data/fake_data.h"
#include "resnet/data/loader.h"
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
  std::thread t5([] {
    data::FakeDataOptions fake;
    fake.shape = {1, 28, 28};
    fake.train_size = 256;
    data::LoaderOptions options;
    options.batch_size = 32;
    options.workers = 2;
    options.prefetch = 2;
    data::DataLoader loader(data::make_fake_data(fake).train, options);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      loader.start_epoch(epoch, epoch == 1 ? 3 : 0);
      int64_t batches = 0;
      while (auto batch = loader.next())
        if (++batches == 4 && epoch == 0) break;  // abandoned: the next start_epoch cancels it
    }
  });
  t1.join();
  t2.join();
  t3.join();
  t4.join();
  t5.join();
  std::printf("tsan driver done\n");
}
