#pragma once
// Resizing 8-bit images exactly as torchvision's Resize does on a PIL image: Pillow's
// Image.resize with the BILINEAR filter.
//
// Pillow's bilinear filter is antialiased: when shrinking by a factor s > 1, its triangle
// kernel is widened to a support of s pixels, so every source pixel contributes (a plain
// bilinear interpolation, PyTorch's interpolate without antialias, samples only the 2x2
// nearest pixels and aliases). Weights are computed in double per output pixel, normalized
// to sum to 1, then turned into fixed point with 22 fractional bits; each pass sums 8-bit
// pixels times these integers and rounds back to 8 bits. The image is resampled
// horizontally first, then vertically, with 8-bit rounding in between, as Pillow does, so
// that the bytes match Pillow's and not only approximately.

#include <cstdint>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

// torchvision's Resize(size) with a single int: the shorter side becomes `size`, the longer
// one int(size * long / short) (the quotient in double, truncated), as
// torchvision.transforms.functional._compute_resized_output_size.
ImageSize shorter_side_size(int64_t height, int64_t width, int64_t size);

// Pillow's resize((out_w, out_h), BILINEAR) of `src` (from.numel() bytes, [C, H, W]; each
// channel is resampled on its own, as Pillow does for L and RGB images). Returns
// C x out_h x out_w bytes.
std::vector<uint8_t> resize_bilinear_antialias(const uint8_t* src, ImageShape from, int64_t out_h,
                                               int64_t out_w);

}  // namespace resnet::data
