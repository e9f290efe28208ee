// JPEG through libjpeg(-turbo). libjpeg reports errors by calling error_exit, which must not
// return; we longjmp back to the setjmp in the one function that drives the library. That
// function holds only trivially destructible locals, so the jump skips no C++ destructor
// (the condition under which setjmp/longjmp is defined in C++).
#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "codec_detail.h"
#include "exif_orientation.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::data::detail {

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings mean corrupt data that libjpeg papers over (a truncated file decodes with its
// missing part in gray); a silently wrong image is worse than a refusal, so they become
// errors. Bytes before a marker are the exception: the image itself is intact.
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
  on_error(cinfo);
}

struct Decoded {
  int64_t height = 0;  // the full size, as declared
  int64_t width = 0;
  int64_t channels = 0;  // 1 gray, 3 colour (YCbCr, RGB, CMYK, YCCK)
  bool cmyk = false;     // 4 components, decoded as libjpeg's CMYK
  bool unsupported_color = false;
  int64_t components = 0;
  int orientation = 1;
  int64_t out_height = 0;  // the decoded size, after scaling
  int64_t out_width = 0;
  int64_t out_components = 0;
  unsigned char* pixels = nullptr;  // malloc'ed, [out_height, out_width, out_components]
};

// Pillow takes the first APP1 segment that starts with "Exif\0" and strips "Exif\0\0".
int find_orientation(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 5) continue;
    if (std::memcmp(m->data, "Exif", 5) != 0) continue;
    if (m->data_length < 6 || m->data[5] != 0) return 1;
    return exif_orientation(m->data + 6, m->data_length - 6);
  }
  return 1;
}

// Returns false with err.message set when libjpeg fails. With header_only, stops after the
// header. Pixels are allocated only after the declared size is known and checked.
bool run_decoder(std::FILE* file, bool header_only, int scale_denom, Decoded& out,
                 ErrorManager& err) {
  const uint64_t file_bytes = bytes_left(file);
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  unsigned char* volatile pixels = nullptr;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(pixels);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, file);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  out.height = cinfo.image_height;
  out.width = cinfo.image_width;
  out.components = cinfo.num_components;
  out.cmyk = cinfo.num_components == 4 &&
             (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
  out.unsupported_color = cinfo.num_components != 1 && cinfo.num_components != 3 && !out.cmyk;
  out.channels = cinfo.num_components == 1 ? 1 : 3;
  out.orientation = find_orientation(cinfo);
  if (header_only || out.unsupported_color || out.height * out.width > kMaxImagePixels) {
    jpeg_destroy_decompress(&cinfo);
    return true;
  }
  // Huffman coding spends at least one bit on each block's DC coefficient, so the file
  // must hold at least one bit per MCU (arithmetic coding has no such bound): a small file
  // declaring a huge image is refused before its pixels are allocated.
  const auto mcu_side = [](uint64_t pixels, int factor) {
    const uint64_t side = 8 * static_cast<uint64_t>(std::max(factor, 1));
    return (pixels + side - 1) / side;
  };
  const uint64_t mcus = mcu_side(cinfo.image_width, cinfo.max_h_samp_factor) *
                        mcu_side(cinfo.image_height, cinfo.max_v_samp_factor);
  if (!cinfo.arith_code && mcus / 8 > file_bytes) {
    std::snprintf(err.message, sizeof err.message,
                  "truncated: a %ux%u image needs at least %llu bytes of coded data, the file "
                  "has %llu",
                  cinfo.image_height, cinfo.image_width, static_cast<unsigned long long>(mcus / 8),
                  static_cast<unsigned long long>(file_bytes));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  // libjpeg converts YCCK to CMYK itself; the Adobe inversion and CMYK -> RGB are ours.
  cinfo.out_color_space = out.channels == 1 ? JCS_GRAYSCALE : (out.cmyk ? JCS_CMYK : JCS_RGB);
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned int>(scale_denom);
  jpeg_start_decompress(&cinfo);
  out.out_height = cinfo.output_height;
  out.out_width = cinfo.output_width;
  out.out_components = cinfo.output_components;
  const size_t row = static_cast<size_t>(cinfo.output_width) * cinfo.output_components;
  pixels = static_cast<unsigned char*>(std::malloc(row * cinfo.output_height));
  if (pixels == nullptr) {
    std::snprintf(err.message, sizeof err.message, "out of memory");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW dst = pixels + row * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &dst, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  out.pixels = pixels;
  return true;
}

// Same pattern for the encoder; `buffer`/`size` come from jpeg_mem_dest (malloc'ed).
bool run_encoder(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels, int quality,
                 unsigned char** buffer, unsigned long* size, ErrorManager& err) {
  jpeg_compress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = static_cast<int>(channels);
  cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t row = static_cast<size_t>(width * channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW src = const_cast<JSAMPROW>(hwc + row * cinfo.next_scanline);
    jpeg_write_scanlines(&cinfo, &src, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

Decoded decode(const EncodedSource& source, bool header_only, int scale_denom) {
  const std::string& path = source.name;
  std::FILE* file = source.open("JPEG");
  Decoded out;
  ErrorManager err{};
  const bool ok = run_decoder(file, header_only, scale_denom, out, err);
  std::fclose(file);
  RESNET_CHECK(ok, path << ": expected a valid JPEG image, got libjpeg error: " << err.message);
  RESNET_CHECK(!out.unsupported_color, path
                                           << ": expected a grayscale, RGB, CMYK or YCCK JPEG, got "
                                           << out.components << " colour components");
  return out;
}

// Pillow reads a CMYK JPEG as Adobe-inverted ("CMYK;I": C = 255 - stored) and converts it
// with cmyk2rgb: k = 255 - K, R = k - C * k / 255 rounded as MULDIV255 does.
std::vector<uint8_t> cmyk_to_rgb(const unsigned char* cmyk, size_t pixels) {
  std::vector<uint8_t> rgb(pixels * 3);
  for (size_t p = 0; p < pixels; ++p, cmyk += 4) {
    const unsigned k = cmyk[3];  // 255 - Pillow's K
    for (int ch = 0; ch < 3; ++ch) {
      const unsigned t = (255u - cmyk[ch]) * k + 128u;
      rgb[p * 3 + static_cast<size_t>(ch)] = static_cast<uint8_t>(k - (((t >> 8) + t) >> 8));
    }
  }
  return rgb;
}

}  // namespace

RawHeader jpeg_header(const EncodedSource& source) {
  Decoded d = decode(source, true, 1);
  return RawHeader{d.height, d.width, d.channels, d.orientation};
}

RawImage jpeg_decode(const EncodedSource& source, int64_t scale_denom) {
  Decoded d = decode(source, false, static_cast<int>(scale_denom));
  // The decoder allocates no pixels for an image over the limit; this names the reason.
  check_image_size(source.name, d.height, d.width);
  RawImage raw{d.out_height, d.out_width,   d.cmyk ? 3 : d.out_components,
               {},           d.orientation, d.channels};
  const size_t pixels = static_cast<size_t>(d.out_height * d.out_width);
  if (d.cmyk) {
    raw.hwc = cmyk_to_rgb(d.pixels, pixels);
  } else {
    raw.hwc.assign(d.pixels, d.pixels + pixels * static_cast<size_t>(d.out_components));
  }
  std::free(d.pixels);
  return raw;
}

void jpeg_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                 int64_t channels, int quality) {
  check_image_size(path, height, width);
  RESNET_CHECK(quality >= 1 && quality <= 100,
               path << ": expected a JPEG quality in [1, 100], got " << quality);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  ErrorManager err{};
  const bool ok = run_encoder(hwc, height, width, channels, quality, &buffer, &size, err);
  std::string bytes = ok ? std::string(reinterpret_cast<char*>(buffer), size) : std::string();
  std::free(buffer);
  RESNET_CHECK(ok, path << ": expected to encode a JPEG image, got libjpeg error: " << err.message);
  io::write_file_atomic(path, bytes);
}

}  // namespace resnet::data::detail
