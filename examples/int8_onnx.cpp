// Runs an ONNX ResNet in int8 after calibrating it on images, next to f32. Usage:
//   int8_onnx MODEL.onnx CALIBRATION_IMAGE... [-- IMAGE...]
// Every image gets ImageNet preprocessing. The calibration images should represent what
// the model will see (a few hundred training images); the images after "--" (default: the
// calibration images) are classified in f32 and int8.
#include <resnet/resnet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.onnx CALIBRATION_IMAGE... [-- IMAGE...]\n", argv[0]);
    return 2;
  }
  try {
    resnet::Model model = resnet::Model::load(argv[1]);
    std::vector<resnet::Tensor> calibration, images;
    std::vector<resnet::Tensor>* into = &calibration;
    for (int i = 2; i < argc; ++i) {
      if (std::string(argv[i]) == "--") {
        into = &images;
        continue;
      }
      const resnet::Tensor x =
          resnet::data::preprocess_image(argv[i], resnet::data::imagenet_preprocessing());
      into->push_back(x.reshape({1, x.dim(0), x.dim(1), x.dim(2)}));
    }
    if (images.empty()) images = calibration;
    model.calibrate(calibration);

    resnet::infer::CompiledModel f32 = model.compile(resnet::Precision::f32);
    resnet::infer::CompiledModel int8 = model.compile(resnet::Precision::int8);
    for (const resnet::Tensor& x : images) {
      const resnet::Tensor a = f32.run(x), b = int8.run(x);
      float largest = 0, diff = 0;
      for (int64_t j = 0; j < a.numel(); ++j) {
        largest = std::max(largest, std::fabs(a.f32()[j]));
        diff = std::max(diff, std::fabs(a.f32()[j] - b.f32()[j]));
      }
      std::printf("top-1 f32 %lld  int8 %lld  max|int8 - f32| %.4f of max|f32|\n",
                  static_cast<long long>(resnet::top_k(a, 1)[0][0].index),
                  static_cast<long long>(resnet::top_k(b, 1)[0][0].index), diff / largest);
    }
  } catch (const resnet::Error& e) {
    std::fprintf(stderr, "int8_onnx: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
