#pragma once
// The resnet library in one include. Link with resnet::resnet (CMake:
// find_package(resnet)) or `pkg-config --cflags --libs resnet`; compile as C++20.
//
// Start with resnet::Model (api/model.h): load a zoo network, a checkpoint or an ONNX
// file, run it in f32, bf16 or int8, save and export it; resnet::train_model
// (api/training.h) trains one. The lower layers it wraps are included too, for programs
// that need more: tensors, image decoding and preprocessing, datasets, the inference
// compiler, checkpoints and ONNX files.

#include "resnet/api/model.h"
#include "resnet/api/model_loading.h"
#include "resnet/api/prediction.h"
#include "resnet/api/runtime.h"
#include "resnet/api/training.h"
#include "resnet/api/version.h"
#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/label_file.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/preprocess.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/onnx.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "resnet/tensor/tensor.h"
#include "resnet/train/checkpoint_info.h"
