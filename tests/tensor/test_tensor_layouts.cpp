// Tensor's layouts (plain, blocked16/8/4, channels_last): storage sizes, what each
// accepts, and views of one storage as another element type.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "resnet/core/error.h"
#include "resnet/tensor/tensor.h"

namespace resnet {
namespace {

// Runs `fn`, expecting a resnet::Error whose message contains `text`.
template <typename Fn>
void expect_error(Fn&& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing: " << text;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(text));
  }
}

TEST(TensorLayouts, StorageRoundsChannelsUpToTheBlock) {
  const Shape shape = {2, 5, 3, 7};
  EXPECT_EQ(Tensor(shape).storage_numel(), 2 * 5 * 3 * 7);
  EXPECT_EQ(Tensor(shape, DType::f32, Layout::blocked16).storage_numel(), 2 * 16 * 3 * 7);
  EXPECT_EQ(Tensor(shape, DType::bf16, Layout::blocked8).storage_numel(), 2 * 8 * 3 * 7);
  EXPECT_EQ(Tensor(shape, DType::u8, Layout::blocked4).storage_numel(), 2 * 8 * 3 * 7);
  EXPECT_EQ(Tensor(shape, DType::i8, Layout::channels_last).storage_numel(), 2 * 5 * 3 * 7);
  EXPECT_EQ(Tensor(shape, DType::bf16, Layout::blocked16).nbytes(), size_t{2} * 16 * 3 * 7 * 2);
  EXPECT_EQ(channel_block(Layout::blocked4), 4);
  EXPECT_EQ(channel_block(Layout::channels_last), 1);
}

TEST(TensorLayouts, NonPlainLayoutsNeedFourDimensionsAndANumericType) {
  expect_error(
      [] {
        Tensor({4, 16}, DType::f32, Layout::blocked16);
      },
      "blocked16 layout needs a 4-D f32, bf16 or int8 tensor, got f32[4, 16]");
  expect_error(
      [] {
        Tensor({1, 4, 2, 2}, DType::i64, Layout::channels_last);
      },
      "channels_last layout needs a 4-D f32, bf16 or int8 tensor, got i64");
}

TEST(TensorLayouts, ViewAsSharesStorageAcrossTypesOfOneSize) {
  Tensor q = Tensor::empty({1, 3, 2, 2}, DType::u8, Layout::channels_last);
  EXPECT_TRUE(q.sole_owner());
  const Tensor s8 = q.view_as(DType::i8);
  EXPECT_TRUE(s8.same_storage(q));
  EXPECT_FALSE(q.sole_owner());
  EXPECT_EQ(s8.dtype(), DType::i8);
  EXPECT_EQ(s8.layout(), Layout::channels_last);
  expect_error([&] { (void)q.view_as(DType::f32); }, "cannot view u8 as f32");
}

}  // namespace
}  // namespace resnet
