// Trains the paper's ResNet-20 on Fashion-MNIST (Debian's dataset-fashion-mnist) with the
// `resnet train` recipe, then saves and exports the result. Usage:
//   train_fashion_mnist [EPOCHS [OUT_DIR [MAX_STEPS]]]
// MAX_STEPS > 0 stops after that many steps (a smoke test), saving last.safetensors.
#include <resnet/resnet.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  try {
    resnet::configure_allocator();  // keep freed memory for the next step
    resnet::TrainConfig config;     // SGD, Nesterov momentum 0.9, one-cycle LR, crops, flips
    config.model = "resnet20";
    config.data = "fashion-mnist";  // or "fashion-mnist:DIR", "cifar10:DIR", "folder:DIR"
    config.epochs = argc > 1 ? std::atoll(argv[1]) : 5;
    config.out = argc > 2 ? argv[2] : "runs/example-fashion-mnist";
    config.max_steps = argc > 3 ? std::atoll(argv[3]) : 0;
    const resnet::TrainResult result = resnet::train_model(config);
    if (!result.interrupted)
      std::printf("best test accuracy %.4f after %lld epochs\n", result.best_test_acc,
                  static_cast<long long>(result.epochs_done));

    // The checkpoint records the architecture, input size, normalization and classes.
    const std::string checkpoint =
        config.out + (result.interrupted ? "/last.safetensors" : "/best.safetensors");
    const resnet::Model model = resnet::Model::load(checkpoint);
    std::printf("%s: %s, %lld classes (%s, ...)\n", checkpoint.c_str(), model.name().c_str(),
                static_cast<long long>(model.num_classes()), model.class_names().at(0).c_str());
    model.export_onnx(config.out + "/resnet20.onnx", 28);
    std::printf("wrote %s/resnet20.onnx\n", config.out.c_str());
  } catch (const resnet::Error& e) {
    std::fprintf(stderr, "train_fashion_mnist: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
