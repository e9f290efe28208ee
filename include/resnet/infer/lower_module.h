#pragma once
// Lowers a module tree (a zoo model or the seed's block) to an inference graph, with
// parameters and buffers under their state_dict names. The graph shares the module's
// tensors, so it sees later weight updates; BN stays unfolded here (the compiler folds).

#include <string>
#include <utility>
#include <vector>

#include "resnet/infer/graph.h"
#include "resnet/nn/module.h"

namespace resnet::infer {

Graph lower_module(nn::Module& model);

// Lowers modules that run one after the other (a network's frozen prefix: its stem and
// first blocks), each named by its path in the model.
Graph lower_chain(const std::vector<std::pair<std::string, nn::Module*>>& chain);

}  // namespace resnet::infer
