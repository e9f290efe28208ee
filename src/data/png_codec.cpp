// PNG through libpng. Reading uses the full API, which alone can bound what a file may make
// libpng allocate (chunk size limits, skipped ancillary chunks); libpng reports errors by
// longjmp-ing to the setjmp in the one function that drives it, which holds only trivially
// destructible locals, so the jump skips no C++ destructor. Writing uses the simplified API,
// which reports errors in image.message.
#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "codec_detail.h"
#include "exif_orientation.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::data::detail {

namespace {

// libpng's own default limit on what one chunk may make it allocate. (libpng 1.6.39 only
// warns about a longer chunk; with ancillary chunks skipped and image data read in pieces,
// nothing that large is ever allocated anyway.)
constexpr png_alloc_size_t kMaxChunkBytes = 8000000;

struct Message {
  char text[256] = "";
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* m = static_cast<Message*>(png_get_error_ptr(png));
  std::snprintf(m->text, sizeof m->text, "%s", message);
  png_longjmp(png, 1);
}

// Warnings are about ancillary data libpng drops (a bad CRC, a misplaced chunk) or trailing
// bytes after the image; the pixels are intact.
void on_png_warning(png_structp, png_const_charp) {}

// Ancillary chunks that do not change the pixels Pillow shows: skipped unread, so that no
// compressed text or ICC profile is ever inflated. (eXIf is read by find_orientation.)
void limit_resources(png_structp png) {
  // The pixel count decides (check_image_size, once the header is known), not a side.
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_chunk_malloc_max(png, kMaxChunkBytes);
  png_set_chunk_cache_max(png, 16);
  static const png_byte skipped[] =
      "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0"
      "sRGB\0sTER\0tEXt\0tIME\0zTXt";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, nullptr, 0);
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, skipped,
                              static_cast<int>(sizeof skipped / 5));
}

struct Decoded {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;             // 1 gray, 3 colour (palette included)
  int64_t components = 0;           // of the decoded rows: 1 to 4
  bool in_pixels = false;           // the header was read: a failure now is in the image data
  unsigned char* pixels = nullptr;  // malloc'ed, [H, W, components]
};

// Returns false with err set when libpng fails. With header_only, stops after the header.
// Pixels are allocated only after the declared size is known and checked.
bool run_decoder(std::FILE* file, bool header_only, Decoded& out, Message& err) {
  const uint64_t file_bytes = bytes_left(file);
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (info == nullptr) {
    std::snprintf(err.text, sizeof err.text, "out of memory");
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  unsigned char* volatile pixels = nullptr;
  png_bytep* volatile rows = nullptr;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::free(pixels);
    std::free(rows);
    return false;
  }
  png_init_io(png, file);
  limit_resources(png);
  png_read_info(png, info);
  png_uint_32 width = 0, height = 0;
  int depth = 0, color = 0;
  png_get_IHDR(png, info, &width, &height, &depth, &color, nullptr, nullptr, nullptr);
  out.height = height;
  out.width = width;
  out.channels = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
  if (header_only || out.height * out.width > kMaxImagePixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
  }
  // Deflate expands at most 1032:1, so the file must hold at least this many bytes of
  // image data (a lower bound: filter bytes and interlacing only add).
  const uint64_t pixel_bits = static_cast<uint64_t>(out.height) * static_cast<uint64_t>(out.width) *
                              static_cast<uint64_t>(depth) * png_get_channels(png, info);
  if (pixel_bits / 8 / 1032 > file_bytes) {
    std::snprintf(err.text, sizeof err.text,
                  "truncated: a %lldx%lld image needs at least %llu bytes of compressed data, "
                  "the file has %llu",
                  static_cast<long long>(out.height), static_cast<long long>(out.width),
                  static_cast<unsigned long long>(pixel_bits / 8 / 1032),
                  static_cast<unsigned long long>(file_bytes));
    out.in_pixels = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  // Pillow's unpacking: palette looked up (tRNS becomes a 4th channel we drop), low bit
  // depths scaled to 0..255, 16-bit samples cut to their high byte. No gamma handling.
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (!(color & PNG_COLOR_MASK_COLOR) && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out.components = png_get_channels(png, info);
  const size_t row = png_get_rowbytes(png, info);
  if (row != static_cast<size_t>(width) * static_cast<size_t>(out.components)) {
    png_error(png, "unexpected row size after the transformations");
  }
  pixels = static_cast<unsigned char*>(std::malloc(row * height));
  rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * height));
  if (pixels == nullptr || rows == nullptr) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = pixels + row * y;
  out.in_pixels = true;
  png_read_image(png, rows);
  // The file's rest (chunks after the image data) is not read: find_orientation walks it.
  png_destroy_read_struct(&png, &info, nullptr);
  std::free(rows);
  out.pixels = pixels;
  return true;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The orientation in the file's last eXIf chunk, wherever it lies (Pillow reads those before
// the image data when opening and those after it when loading; the last one wins). Walks the
// chunk headers only; a chunk that runs past the end of the file ends the walk.
int find_orientation(std::FILE* file) {
  if (std::fseek(file, 0, SEEK_END) != 0) return 1;
  const long file_size = std::ftell(file);
  if (file_size < 0 || std::fseek(file, 8, SEEK_SET) != 0) return 1;
  std::vector<uint8_t> exif;
  unsigned char header[8];
  while (std::fread(header, 1, 8, file) == 8) {
    const uint32_t length = be32(header);
    const long here = std::ftell(file);
    if (here < 0 || length > static_cast<uint64_t>(file_size - here)) break;
    if (std::memcmp(header + 4, "IEND", 4) == 0) break;
    if (std::memcmp(header + 4, "eXIf", 4) == 0) {
      exif.resize(length);
      if (std::fread(exif.data(), 1, length, file) != length) break;
      if (std::fseek(file, 4, SEEK_CUR) != 0) break;
    } else if (std::fseek(file, static_cast<long>(length) + 4, SEEK_CUR) != 0) {
      break;
    }
  }
  return exif_orientation(exif.data(), exif.size());
}

Decoded decode(const EncodedSource& source, bool header_only, int* orientation) {
  const std::string& path = source.name;
  std::FILE* file = source.open("PNG");
  Decoded out;
  Message err;
  const bool ok = run_decoder(file, header_only, out, err);
  if (ok) *orientation = find_orientation(file);
  std::fclose(file);
  RESNET_CHECK(ok, path << ": expected a " << (out.in_pixels ? "complete" : "readable")
                        << " PNG image, got libpng error: " << err.text);
  return out;
}

}  // namespace

RawHeader png_header(const EncodedSource& source) {
  int orientation = 1;
  Decoded d = decode(source, true, &orientation);
  return RawHeader{d.height, d.width, d.channels, orientation};
}

RawImage png_decode(const EncodedSource& source) {
  int orientation = 1;
  Decoded d = decode(source, false, &orientation);
  // The decoder allocates no pixels for an image over the limit; this names the reason.
  check_image_size(source.name, d.height, d.width);
  RawImage raw{d.height, d.width, d.components, {}, orientation, d.channels};
  raw.hwc.assign(d.pixels, d.pixels + static_cast<size_t>(d.height * d.width * d.components));
  std::free(d.pixels);
  return raw;
}

void png_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                int64_t channels) {
  check_image_size(path, height, width);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  const png_uint_32 formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  image.format = formats[channels - 1];
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(image, size, 0, hwc, 0, nullptr)) {
    RESNET_FAIL(path << ": expected to encode a PNG image, got libpng error: " << image.message);
  }
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, hwc, 0, nullptr)) {
    RESNET_FAIL(path << ": expected to encode a PNG image, got libpng error: " << image.message);
  }
  bytes.resize(size);
  io::write_file_atomic(path, bytes);
}

}  // namespace resnet::data::detail
