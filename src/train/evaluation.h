#pragma once
// The test pass of a training run: the compiled inference graph over the test loader, as
// `resnet eval` runs the checkpoint, so the accuracy a run reports is the one its
// checkpoint gets.

#include "resnet/data/loader.h"
#include "resnet/dist/communicator.h"
#include "resnet/nn/module.h"

namespace resnet::train {

struct Evaluation {
  double loss = 0.0, accuracy = 0.0;
};

// Mean loss and accuracy of `model` over the loader's epoch 0 (with test_flip, of the mean
// logits of each image and its mirror). Data-parallel: each rank tests its shard of every
// batch, and the sums are added over the ranks (the counts exactly), so the accuracy is
// the one-process figure. Leaves the model in training mode.
Evaluation evaluate(nn::Module& model, data::DataLoader& loader, bool test_flip,
                    dist::Communicator& comm);

}  // namespace resnet::train
