// Ema (train/ema.h): timm ModelEmaV2's update of weights and buffers, the state round
// trip, and refusals.

#include "resnet/train/ema.h"

#include <gtest/gtest.h>

#include <cstring>

#include "resnet/models/zoo.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

TEST(Ema, AveragesEveryFloatEntryAndCopiesIntegerBuffers) {
  auto model = models::build("resnet20");
  train::Ema ema(models::build("resnet20"), *model, 0.9);
  std::vector<Tensor> start;
  for (auto& [name, t] : model->state_dict()) start.push_back(t->clone());
  // Move the model: every float entry +1, num_batches_tracked to 5.
  for (auto& [name, t] : model->state_dict()) {
    if (t->dtype() == DType::i64) {
      t->i64()[0] = 5;
    } else {
      for (float& v : t->values()) v += 1.f;
    }
  }
  ema.update(*model);
  auto avg = ema.module().state_dict();
  auto now = model->state_dict();
  for (size_t i = 0; i < avg.size(); ++i) {
    const Tensor& e = *avg[i].second;
    if (e.dtype() == DType::i64) {
      EXPECT_EQ(e.i64()[0], 5) << avg[i].first;
      continue;
    }
    for (int64_t j = 0; j < e.numel(); ++j) {
      const float want = 0.9f * start[i].f32()[j] + 0.1f * now[i].second->f32()[j];
      ASSERT_EQ(e.f32()[j], want) << avg[i].first << " " << j;
    }
  }
  EXPECT_FALSE(ema.module().is_training());
}

TEST(Ema, StateRoundTripsAndIsChecked) {
  auto model = models::build("resnet20");
  train::Ema ema(models::build("resnet20"), *model, 0.99);
  for (auto& [name, t] : model->state_dict())
    if (t->dtype() == DType::f32) t->copy_from(testing::random_tensor(t->shape(), 4));
  ema.update(*model);
  std::vector<std::pair<std::string, Tensor>> state;
  for (auto& [k, t] : ema.state_tensors()) state.emplace_back(k, t.clone());
  train::Ema other(models::build("resnet20"), *models::build("resnet20"), 0.99);
  other.load_state(state);
  auto a = ema.module().state_dict();
  auto b = other.module().state_dict();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(std::memcmp(a[i].second->raw(), b[i].second->raw(), a[i].second->nbytes()), 0)
        << a[i].first;
  state.pop_back();
  EXPECT_TRAIN_ERROR(other.load_state(state), "missing 'ema.fc.bias'");
  EXPECT_TRAIN_ERROR(train::Ema(models::build("resnet20"), *model, 1.0), "[0, 1)");
  EXPECT_TRAIN_ERROR(train::Ema(models::build("resnet32"), *model, 0.9), "same architecture");
}

}  // namespace
}  // namespace resnet
