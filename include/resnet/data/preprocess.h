#pragma once
// How an image file becomes a network's input at inference time: decode, resize, crop,
// scale to [0, 1], normalize. A Preprocessing is the recipe; its steps run in this order:
//
//   decode          to `channels` (1 or 3), converted as Pillow's convert("L" / "RGB")
//   resize_shorter  > 0: torchvision's Resize(resize_shorter) on the 8-bit image, i.e.
//                   Pillow's antialiased bilinear resize (resize_antialias.h)
//   to floats       byte / 255, as ToTensor
//   resize_height,  > 0: exactly this size, bilinear on floats without antialiasing (how the
//   resize_width    trainer's image folders resize, so a checkpoint sees what it trained on)
//   crop_height,    > 0: torchvision's CenterCrop (center_crop.h)
//   crop_width
//   mean, std       non-empty: Normalize, one per channel
//
// imagenet_preprocessing() is torchvision's standard ImageNet evaluation transform:
// Resize(256), CenterCrop(224), ToTensor(), Normalize((0.485, 0.456, 0.406),
// (0.229, 0.224, 0.225)).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/tensor/tensor.h"

namespace resnet::data {

struct Preprocessing {
  std::string name;  // what it is called on the command line: "imagenet", "checkpoint", "none"
  int64_t channels = 3;
  int64_t resize_shorter = 0;
  int64_t resize_height = 0, resize_width = 0;
  int64_t crop_height = 0, crop_width = 0;
  std::vector<float> mean, std;

  // "resize shorter side to 256 (antialiased bilinear), center crop 224x224, normalize
  // mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)"
  std::string describe() const;
};

Preprocessing imagenet_preprocessing();

// Runs the recipe on decoded 8-bit [C, H, W] pixels (shape.channels == p.channels);
// returns [C, H, W] f32.
Tensor preprocess_pixels(const uint8_t* pixels, ImageShape shape, const Preprocessing& p);

// Decodes the PNG or JPEG file at `path` and runs the recipe; errors name the file.
Tensor preprocess_image(const std::string& path, const Preprocessing& p);
// The same for a PNG or JPEG file's bytes held in memory (an upload); `name` stands for
// the file in errors.
Tensor preprocess_image(std::span<const uint8_t> bytes, const std::string& name,
                        const Preprocessing& p);

}  // namespace resnet::data
