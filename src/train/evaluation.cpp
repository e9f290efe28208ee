#include "evaluation.h"

#include "resnet/data/transforms.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/train/cross_entropy.h"
#include "resnet/train/top_k.h"

namespace resnet::train {

namespace {

// The logits of `images`, or with test_flip the mean of theirs and their mirrors'.
Tensor test_logits(infer::CompiledModel& compiled, const Tensor& images, bool test_flip) {
  Tensor logits = compiled.run(images);
  if (!test_flip) return logits;
  Tensor mirrored = images.clone();
  data::hflip_batch(mirrored);
  const Tensor mirrored_logits = compiled.run(mirrored);
  float* out = logits.f32();
  const float* other = mirrored_logits.f32();
  for (int64_t i = 0; i < logits.numel(); ++i) out[i] = 0.5f * (out[i] + other[i]);
  return logits;
}

}  // namespace

// Runs the compiled inference graph, as `resnet eval` does on the checkpoint, so the
// accuracy a run reports is the one its checkpoint gets.
// Data-parallel: each rank tests its shard of every batch, and the sums are added over
// the ranks (the counts exactly), so the accuracy is the one-process figure.
Evaluation evaluate(nn::Module& model, data::DataLoader& loader, bool test_flip,
                    dist::Communicator& comm) {
  model.eval();
  infer::CompiledModel compiled(infer::lower_module(model));
  loader.start_epoch(0);
  double loss_sum = 0.0;
  int64_t correct = 0, count = 0;
  while (auto batch = loader.next()) {
    if (batch->size() == 0) continue;  // a shard of a batch smaller than the ranks
    Tensor logits = test_logits(compiled, batch->images, test_flip);
    std::span<const int64_t> labels(batch->labels.i64(), static_cast<size_t>(batch->size()));
    loss_sum += cross_entropy(logits, labels).loss * static_cast<double>(batch->size());
    correct += count_top_k_correct(logits, labels, 1);
    count += batch->size();
  }
  model.train();
  if (comm.distributed()) {
    comm.allreduce_sum(std::span(&loss_sum, 1), "evaluation sums");
    int64_t counts[2] = {correct, count};
    comm.allreduce_sum(std::span(counts), "evaluation counts");
    correct = counts[0];
    count = counts[1];
  }
  return {loss_sum / static_cast<double>(count),
          static_cast<double>(correct) / static_cast<double>(count)};
}

}  // namespace resnet::train
