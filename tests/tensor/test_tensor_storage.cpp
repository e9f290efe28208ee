// Tensor storage: zero-filled and uninitialized tensors, and the pool that large
// storage is reused from (include/resnet/tensor/storage_pool.h).

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "resnet/tensor/storage_pool.h"
#include "resnet/tensor/tensor.h"

namespace resnet {
namespace {

constexpr int64_t kLarge = 1 << 20;  // 4 MiB of f32: pooled

#ifdef RESNET_SANITIZE
#define SKIP_WITHOUT_POOL() GTEST_SKIP() << "the sanitizer build allocates every tensor with malloc"
#else
#define SKIP_WITHOUT_POOL() (void)0
#endif

bool all_zero(const Tensor& t) {
  const float* p = t.f32();
  return std::all_of(p, p + t.storage_numel(), [](float v) { return v == 0.f; });
}

TEST(TensorStorage, ZeroFilledEvenWhenReusingADirtyBlock) {
  SKIP_WITHOUT_POOL();
  const void* first = nullptr;
  {
    Tensor dirty({kLarge});
    dirty.fill(7.f);
    first = dirty.raw();
  }
  Tensor again({kLarge});
  EXPECT_EQ(again.raw(), first) << "the freed block of the same size is handed out again";
  EXPECT_TRUE(all_zero(again));
}

TEST(TensorStorage, BlockedPaddingIsZeroInAZeroFilledTensor) {
  {
    Tensor dirty({2, 21, 33, 35}, DType::f32, Layout::blocked16);
    dirty.fill(-3.f);
  }
  Tensor t({2, 21, 33, 35}, DType::f32, Layout::blocked16);
  EXPECT_EQ(t.storage_numel(), 2 * 32 * 33 * 35);
  EXPECT_TRUE(all_zero(t));
}

TEST(TensorStorage, EmptyTensorHasItsShapeAndWritableStorage) {
  for (int64_t n : {int64_t{3}, kLarge + 5}) {
    Tensor t = Tensor::empty({n});
    ASSERT_EQ(t.numel(), n);
    t.fill(2.5f);
    EXPECT_EQ(t.f32()[0], 2.5f);
    EXPECT_EQ(t.f32()[n - 1], 2.5f);
  }
  Tensor b = Tensor::empty({3, 17, 5, 7}, DType::f32, Layout::blocked16);
  EXPECT_EQ(b.layout(), Layout::blocked16);
  EXPECT_EQ(b.nbytes(), size_t{3 * 32 * 5 * 7 * 4});
}

TEST(TensorStorage, PoolReusesBlocksAndCountsLiveBytes) {
  SKIP_WITHOUT_POOL();
  const size_t live0 = detail::pooled_storage_live_bytes();
  std::vector<const void*> seen;
  {
    Tensor a = Tensor::empty({kLarge}), b = Tensor::empty({kLarge});
    EXPECT_NE(a.raw(), b.raw());
    EXPECT_GE(detail::pooled_storage_live_bytes(), live0 + 2 * kLarge * 4);
    seen = {a.raw(), b.raw()};
  }
  EXPECT_EQ(detail::pooled_storage_live_bytes(), live0);
  Tensor c = Tensor::empty({kLarge});
  EXPECT_TRUE(c.raw() == seen[0] || c.raw() == seen[1]);
}

// Best fit: a smaller request is cut from a larger free block, and freed neighbours
// merge again, so that a step whose sizes change from layer to layer reuses resident
// pages instead of mapping (and faulting in) new ones.
TEST(TensorStorage, PoolSplitsFreeBlocksAndMergesThemBack) {
  SKIP_WITHOUT_POOL();
  const int64_t big = 12 * kLarge;  // 48 MiB: a segment of its own
  const char* base = nullptr;
  {
    Tensor whole = Tensor::empty({big});
    base = static_cast<const char*>(whole.raw());
  }
  const size_t mapped = detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes();
  {
    Tensor a = Tensor::empty({big / 2}), b = Tensor::empty({big / 2});
    for (const Tensor* t : {&a, &b}) {
      const char* p = static_cast<const char*>(t->raw());
      EXPECT_TRUE(p >= base && p < base + big * 4) << "not cut from the freed block";
    }
    EXPECT_EQ(detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes(), mapped);
  }
  Tensor again = Tensor::empty({big});
  EXPECT_EQ(static_cast<const char*>(again.raw()), base) << "the halves did not merge back";
  EXPECT_EQ(detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes(), mapped);
}

// A block cut from pages already written is not reported as zero: zeros() still fills it.
TEST(TensorStorage, ReusedPagesOfASplitBlockAreZeroFilled) {
  SKIP_WITHOUT_POOL();
  {
    Tensor dirty = Tensor::full({8 * kLarge}, 3.f);
    (void)dirty;
  }
  Tensor a = Tensor::zeros({2 * kLarge}), b = Tensor::zeros({2 * kLarge});
  for (const Tensor* t : {&a, &b})
    for (int64_t i = 0; i < t->numel(); i += 4099) ASSERT_EQ(t->f32()[i], 0.f) << i;
}

// Splitting and merging must never hand out overlapping blocks: a random sequence of
// allocations and releases of many sizes, each block filled with its own tag and checked
// intact when it is released.
TEST(TensorStorage, PoolNeverHandsOutOverlappingBlocks) {
  SKIP_WITHOUT_POOL();
  std::mt19937 rng(7);
  std::vector<std::pair<Tensor, float>> live;
  for (int step = 0; step < 600; ++step) {
    if (!live.empty() && (live.size() > 24 || rng() % 3 == 0)) {
      const size_t i = rng() % live.size();
      const Tensor& t = live[i].first;
      for (int64_t k = 0; k < t.numel(); k += 997)
        ASSERT_EQ(t.f32()[k], live[i].second) << "block overwritten at step " << step;
      ASSERT_EQ(t.f32()[t.numel() - 1], live[i].second) << "block end overwritten";
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      // 64 KiB to 24 MiB, not page multiples.
      const int64_t numel = (int64_t{1} << 14) + static_cast<int64_t>(rng() % (6u << 20));
      const float tag = static_cast<float>(step);
      live.emplace_back(Tensor::full({numel}, tag), tag);
    }
  }
  const size_t footprint =
      detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes();
  EXPECT_LE(footprint, 2 * detail::pooled_storage_high_water_bytes());
}

TEST(TensorStorage, CachedMemoryStaysWithinTwiceTheLivePeak) {
  SKIP_WITHOUT_POOL();
  // One tensor at a time, each of a new size: without eviction the cache would keep
  // every one of them. Enough sizes to exceed twice any earlier peak of this process.
  const size_t block = 16u << 20;
  const size_t sizes = 2 * detail::pooled_storage_high_water_bytes() / block + 8;
  for (size_t i = 0; i < sizes; ++i) {
    Tensor t = Tensor::empty({static_cast<int64_t>((block + i * 4096) / 4)});
    (void)t;
  }
  const size_t footprint =
      detail::pooled_storage_live_bytes() + detail::pooled_storage_cached_bytes();
  EXPECT_LE(footprint, 2 * detail::pooled_storage_high_water_bytes());
  EXPECT_GT(detail::pooled_storage_cached_bytes(), 0u);
}

}  // namespace
}  // namespace resnet
