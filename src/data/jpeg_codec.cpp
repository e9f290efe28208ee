// JPEG through libjpeg(-turbo). libjpeg reports errors by calling error_exit, which must not
// return; we longjmp back to the setjmp in the one function that drives the library. That
// function holds only trivially destructible locals, so the jump skips no C++ destructor
// (the condition under which setjmp/longjmp is defined in C++).
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "codec_detail.h"
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
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  bool unsupported_color = false;
  J_COLOR_SPACE color_space = JCS_UNKNOWN;
  unsigned char* pixels = nullptr;  // malloc'ed, [H, W, C]
};

// Returns false with err.message set when libjpeg fails. With header_only, stops after the
// header. Pixels are allocated only after the size is known and checked (`too_big`).
bool run_decoder(std::FILE* file, bool header_only, Decoded& out, ErrorManager& err) {
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
  jpeg_read_header(&cinfo, TRUE);
  out.height = cinfo.image_height;
  out.width = cinfo.image_width;
  out.color_space = cinfo.jpeg_color_space;
  out.unsupported_color = cinfo.num_components != 1 && cinfo.num_components != 3;
  out.channels = cinfo.num_components == 1 ? 1 : 3;
  if (header_only || out.unsupported_color || out.height * out.width > kMaxImagePixels) {
    jpeg_destroy_decompress(&cinfo);
    return true;
  }
  cinfo.out_color_space = out.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
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

const char* color_space_name(J_COLOR_SPACE cs) {
  switch (cs) {
    case JCS_CMYK:
      return "CMYK";
    case JCS_YCCK:
      return "YCCK";
    default:
      return "an unsupported colour space";
  }
}

Decoded decode(const std::string& path, bool header_only) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  RESNET_CHECK(file != nullptr,
               path << ": expected a readable JPEG file, got " << std::strerror(errno));
  Decoded out;
  ErrorManager err{};
  const bool ok = run_decoder(file, header_only, out, err);
  std::fclose(file);
  RESNET_CHECK(ok, path << ": expected a valid JPEG image, got libjpeg error: " << err.message);
  RESNET_CHECK(!out.unsupported_color, path << ": expected a grayscale or RGB JPEG, got "
                                            << color_space_name(out.color_space));
  return out;
}

}  // namespace

ImageInfo jpeg_info(const std::string& path) {
  Decoded d = decode(path, true);
  return ImageInfo{ImageFormat::jpeg, d.height, d.width, d.channels};
}

RawImage jpeg_decode(const std::string& path) {
  Decoded d = decode(path, false);
  // The decoder allocates no pixels for an image over the limit; this names the reason.
  check_image_size(path, d.height, d.width);
  RawImage raw{d.height, d.width, d.channels, {}};
  const size_t n = static_cast<size_t>(d.height * d.width * d.channels);
  raw.hwc.assign(d.pixels, d.pixels + n);
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
