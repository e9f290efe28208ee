#pragma once
// Internal: the EXIF orientation tag, read as Pillow's Image.getexif() reads it and applied
// as ImageOps.exif_transpose applies it.

#include <cstddef>
#include <cstdint>

#include "codec_detail.h"

namespace resnet::data::detail {

// The orientation (1 to 8) recorded in an EXIF block: `tiff` is the TIFF structure that
// follows "Exif\0\0" in a JPEG APP1 segment, or a PNG eXIf chunk's data. Only the first IFD
// is read, every offset is checked against `size`, and anything malformed or absent gives
// 1 (as is). Like Pillow: the last 0x0112 entry counts, its first value must be a number
// equal to an integer in 2..8, and an entry whose data lies outside the block ends the
// scan (entries before it stand).
int exif_orientation(const uint8_t* tiff, size_t size);

// Whether `orientation` (5 to 8) exchanges height and width.
inline bool orientation_swaps_axes(int orientation) {
  return orientation >= 5 && orientation <= 8;
}

// Transposes `image` (interleaved [H, W, C]) so that it shows upright: Pillow's
// FLIP_LEFT_RIGHT (2), ROTATE_180 (3), FLIP_TOP_BOTTOM (4), TRANSPOSE (5), ROTATE_270 (6),
// TRANSVERSE (7) and ROTATE_90 (8). Orientation 1 leaves it as it is.
void apply_orientation(RawImage& image, int orientation);

}  // namespace resnet::data::detail
