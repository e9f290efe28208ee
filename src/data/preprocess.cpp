#include "resnet/data/preprocess.h"

#include <sstream>

#include "resnet/core/error.h"
#include "resnet/data/center_crop.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/resize_antialias.h"
#include "resnet/data/transforms.h"

namespace resnet::data {

namespace {

std::string tuple(const std::vector<float>& v) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << ")";
  return s.str();
}

}  // namespace

std::string Preprocessing::describe() const {
  std::vector<std::string> steps;
  std::ostringstream s;
  if (resize_shorter > 0) {
    steps.push_back("resize shorter side to " + std::to_string(resize_shorter) +
                    " (antialiased bilinear)");
  }
  if (resize_height > 0) {
    steps.push_back("resize to " + std::to_string(resize_height) + "x" +
                    std::to_string(resize_width) + " (bilinear)");
  }
  if (crop_height > 0) {
    steps.push_back("center crop " + std::to_string(crop_height) + "x" +
                    std::to_string(crop_width));
  }
  steps.push_back("scale to [0, 1]");
  if (!mean.empty()) steps.push_back("normalize mean " + tuple(mean) + " std " + tuple(std));
  for (size_t i = 0; i < steps.size(); ++i) s << (i ? ", " : "") << steps[i];
  return s.str();
}

Preprocessing imagenet_preprocessing() {
  Preprocessing p;
  p.name = "imagenet";
  p.channels = 3;
  p.resize_shorter = 256;
  p.crop_height = p.crop_width = 224;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  return p;
}

Tensor preprocess_pixels(const uint8_t* pixels, ImageShape shape, const Preprocessing& p) {
  RESNET_CHECK(shape.channels == p.channels,
               "preprocess: expected " << p.channels << " channels, got " << shape.str());
  RESNET_CHECK(p.mean.empty() || static_cast<int64_t>(p.mean.size()) == p.channels,
               "preprocess " << p.name << ": expected one mean and std per channel (" << p.channels
                             << "), got " << p.mean.size());
  std::vector<uint8_t> resized;
  if (p.resize_shorter > 0) {
    const ImageSize size = shorter_side_size(shape.height, shape.width, p.resize_shorter);
    // torchvision returns the image untouched when it already has the size.
    if (size.height != shape.height || size.width != shape.width) {
      resized = resize_bilinear_antialias(pixels, shape, size.height, size.width);
      pixels = resized.data();
      shape = {shape.channels, size.height, size.width};
    }
  }
  Tensor image(shape.shape());
  bytes_to_unit_floats(pixels, shape.numel(), image.f32());
  if (p.resize_height > 0 && p.resize_width > 0 &&
      (p.resize_height != shape.height || p.resize_width != shape.width)) {
    Tensor out({shape.channels, p.resize_height, p.resize_width});
    resize_bilinear(image.f32(), shape, out.f32(), p.resize_height, p.resize_width);
    image = out;
  }
  if (p.crop_height > 0 && p.crop_width > 0)
    image = center_crop(image, p.crop_height, p.crop_width);
  if (!p.mean.empty()) normalize(image, p.mean, p.std);
  return image;
}

namespace {

// Decodes with `decode` (a file or bytes in memory, called `name` in errors) and runs the
// recipe: one path for both sources.
template <typename Decode>
Tensor decode_and_preprocess(const std::string& name, const Preprocessing& p, Decode decode) {
  RESNET_CHECK(p.channels == 1 || p.channels == 3,
               name << ": expected a model taking 1 or 3 image channels, got " << p.channels);
  ImageInfo header;
  const std::vector<uint8_t> bytes = decode(&header);
  const ImageShape shape{p.channels, header.height, header.width};
  RESNET_CHECK(static_cast<int64_t>(bytes.size()) == shape.numel(),
               name << ": expected " << shape.numel() << " decoded bytes (" << shape.str()
                    << "), got " << bytes.size());
  return preprocess_pixels(bytes.data(), shape, p);
}

}  // namespace

Tensor preprocess_image(const std::string& path, const Preprocessing& p) {
  return decode_and_preprocess(
      path, p, [&](ImageInfo* info) { return decode_image(path, p.channels, info); });
}

Tensor preprocess_image(std::span<const uint8_t> bytes, const std::string& name,
                        const Preprocessing& p) {
  return decode_and_preprocess(
      name, p, [&](ImageInfo* info) { return decode_image(bytes, name, p.channels, info); });
}

}  // namespace resnet::data
