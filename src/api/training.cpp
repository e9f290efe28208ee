#include "resnet/api/training.h"

namespace resnet {

TrainResult train_model(const TrainConfig& config, bool resume) {
  return train::train(config, resume);
}

}  // namespace resnet
