// The five most likely classes of an image under a torchvision-format ResNet, with
// torchvision's ImageNet preprocessing. Usage:
//   classify MODEL STATE_DICT.safetensors IMAGE [LABELS.txt]
//   classify resnet50 resnet50.safetensors cat.jpg imagenet_classes.txt
// where resnet50.safetensors comes from Python:
//   safetensors.torch.save_file(torchvision.models.resnet50(weights="IMAGENET1K_V2").state_dict(),
//                               "resnet50.safetensors")
#include <resnet/resnet.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL STATE_DICT.safetensors IMAGE [LABELS.txt]\n", argv[0]);
    return 2;
  }
  try {
    const resnet::Model model = resnet::Model::load(argv[1], {.weights = argv[2]});
    // Resize(256), CenterCrop(224), ToTensor(), Normalize(ImageNet mean, std): [3, 224, 224].
    const resnet::Tensor image =
        resnet::data::preprocess_image(argv[3], resnet::data::imagenet_preprocessing());
    resnet::infer::CompiledModel net = model.compile(resnet::Precision::f32);
    const resnet::Tensor logits = net.run(image.reshape({1, 3, image.dim(1), image.dim(2)}));

    std::vector<std::string> labels;
    if (argc > 4) labels = resnet::data::read_label_file(argv[4], model.num_classes());
    const std::vector<resnet::ClassScore> top5 = resnet::top_k(logits, 5)[0];
    for (const resnet::ClassScore& c : top5) {
      const std::string label = labels.empty() ? std::to_string(c.index) : labels[c.index];
      std::printf("%.4f  %s\n", c.probability, label.c_str());
    }
  } catch (const resnet::Error& e) {
    std::fprintf(stderr, "classify: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
