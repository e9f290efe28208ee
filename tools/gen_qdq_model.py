#!/usr/bin/env python3
"""Writes a torchvision ResNet as a QDQ ONNX model, in the form ONNX Runtime's static
quantizer (quantize_static, QuantFormat.QDQ, MinMax calibration) writes it.

    /usr/bin/python3 tools/gen_qdq_model.py --model resnet50 --size 224 --out q.onnx
        [--calibration-images 16] [--eval-images 32] [--seed 1] [--qlinear] [--strip]

The test fixtures tests/fixtures/onnx_quantized/resnet18_{qdq,qlinear}.onnx are
    --model resnet18 --size 64 --strip [--qlinear]

None of the quantized ResNets people download can be fetched here, so this builds their
equivalent from what the quantizer does to a float ResNet:
- BatchNorm folded into the convolutions first (the quantizer's pre-processing);
- weights INT8, symmetric, per output channel (axis 0), range [-127, 127]; biases INT32
  on the step input_scale * weight_scale, read through DequantizeLinear;
- activations INT8, asymmetric (QInt8, its default; UINT8 with --activation-type uint8),
  from the min and max over the calibration images, with rmin <= 0 <= rmax:
  scale = (rmax - rmin) / 255 and zero point round(qmin - rmin / scale);
- a QuantizeLinear -> DequantizeLinear pair on the graph input and on every output of a
  Conv, Add, MaxPool, GlobalAveragePool, Flatten and Gemm;
- no Relu nodes: the quantizer removes a Relu that follows a quantized Conv or Add and
  quantizes its input on the Relu's output range, whose zero point -128 clamps at 0.

With --qlinear it writes the QOperator form of the Model Zoo's int8 ResNets instead:
QLinearConv, ONNX Runtime's QLinearAdd and QLinearGlobalAveragePool (com.microsoft),
MaxPool on the integers, QLinearMatMul with an Add for the classifier's bias, and one
QuantizeLinear at the input and one DequantizeLinear at the output.

The network is torchvision's, with its own random initialisation (seeded) and BatchNorm
running statistics measured on the calibration images, so that activations keep sane
ranges through the depth. Calibration images and evaluation images are different crops
of different photos (skimage's sample photos), both written beside the model as .npy
(ImageNet-normalised, [N, 3, S, S]): OUT.calibration.npy and OUT.eval.npy. An int8
comparison must judge on the evaluation images only. OUT.eval.simulated.npy holds what the
file computes on them, every quantized value rounded onto its grid in float (PyTorch):
the answer both runtimes approximate, each with its own integer arithmetic.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, helper, numpy_helper

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
CALIBRATION_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
EVAL_PHOTOS = ["cat", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel"]


def photo_crops(names, count, size, rng):
    """`count` random square crops of the named skimage photos, resized to `size`."""
    import skimage.data
    from skimage.transform import resize

    photos = []
    for n in names:
        img = getattr(skimage.data, n)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        photos.append(img[..., :3].astype(np.float32) / 255.0)
    out = np.empty((count, 3, size, size), np.float32)
    for i in range(count):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = resize(img[y:y + side, x:x + side], (size, size), anti_aliasing=True)
        out[i] = (crop.transpose(2, 0, 1) - MEAN) / STD
    return out


def folded(conv, bn):
    """The convolution's weight and bias with the (eval-mode) BatchNorm folded in."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * scale
    return w.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


ACTIVATION_TYPE = np.int8  # --activation-type


def activation_grid(lo, hi):
    """ONNX Runtime's asymmetric grid for the range [lo, hi] (MinMax calibration), INT8
    (QInt8, its default) or UINT8 (QUInt8)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin = -128 if ACTIVATION_TYPE == np.int8 else 0
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zero_point = int(np.clip(np.round(qmin - lo / scale), qmin, qmin + 255))
    return np.float32(scale), ACTIVATION_TYPE(zero_point)


class Writer:
    """Builds the QDQ (or QLinear) graph while computing the float network it quantizes,
    so that every quantized value's range comes from the same computation."""

    def __init__(self, images, qlinear, grids=None):
        self.x = torch.from_numpy(images)
        self.qlinear = qlinear
        self.nodes, self.inits = [], []
        # Given the grids of an earlier pass, the writer simulates the file instead: every
        # quantized value is rounded onto its grid, which is what the model computes.
        self.simulate = grids is not None
        self.grids = dict(grids) if grids else {}

    def rounded(self, name, value):
        """`value` on the grid of `name` when simulating, else as is."""
        if not self.simulate:
            return value
        s, z = self.grids[name]
        qmin = -128 if ACTIVATION_TYPE == np.int8 else 0
        q = torch.clamp(torch.round(value / float(s)) + int(z), qmin, qmin + 255)
        return (q - int(z)) * float(s)

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def quantize(self, name, value):
        """Q -> DQ of activation `name` on the grid of `value`'s calibration range; returns
        the name readers use (the DQ output; in QLinear form, the integers)."""
        if not self.simulate:
            s, z = activation_grid(value.min(), value.max())
            self.grids[name] = self.grids[name + "_dequantized"] = (s, z)
        s, z = self.grids[name]
        self.init(name + "_scale", np.array(s, np.float32))
        self.init(name + "_zero_point", np.array(z, ACTIVATION_TYPE))
        if self.qlinear:
            return name
        self.nodes.append(helper.make_node("QuantizeLinear", [name, name + "_scale", name + "_zero_point"],
                                           [name + "_quantized"], name=name + "_QuantizeLinear"))
        self.nodes.append(helper.make_node("DequantizeLinear",
                                           [name + "_quantized", name + "_scale", name + "_zero_point"],
                                           [name + "_dequantized"], name=name + "_DequantizeLinear"))
        return name + "_dequantized"

    def weight(self, name, w, x_name, b):
        """The INT8 weight (per output channel) and INT32 bias of a Conv or Gemm reading
        `x_name`; returns the names of the weight and bias (dequantized in QDQ form)."""
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(1)
        w_scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        shape = (-1,) + (1,) * (w.ndim - 1)
        w_q = np.clip(np.round(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
        b_scale = (self.grids[x_name][0] * w_scale).astype(np.float32)
        b_q = np.round(b / b_scale).astype(np.int32)
        self.init(name + "_weight_quantized", w_q)
        self.init(name + "_weight_scale", w_scale)
        self.init(name + "_weight_zero_point", np.zeros(w.shape[0], np.int8))
        self.init(name + "_bias_quantized", b_q)
        self.init(name + "_bias_scale", b_scale)
        self.init(name + "_bias_zero_point", np.zeros(w.shape[0], np.int32))
        # What the float graph computes with: the dequantized weight and bias.
        w_real = (w_q.astype(np.float32) * w_scale.reshape(shape)).astype(np.float32)
        b_real = (b_q.astype(np.float64) * b_scale).astype(np.float32)
        if self.qlinear:
            return w_real, b_real
        for part in ("weight", "bias"):
            self.nodes.append(helper.make_node(
                "DequantizeLinear", [f"{name}_{part}_quantized", f"{name}_{part}_scale",
                                     f"{name}_{part}_zero_point"],
                [f"{name}_{part}"], name=f"{name}_{part}_DequantizeLinear", axis=0))
        return w_real, b_real

    def conv(self, name, x_name, x, conv, bn, relu):
        w, b = folded(conv, bn)
        w_real, b_real = self.weight(name, w, x_name, b)
        y = F.conv2d(x, torch.from_numpy(w_real), torch.from_numpy(b_real), conv.stride, conv.padding)
        if relu:
            y = F.relu(y)
        k = list(conv.kernel_size)
        attrs = dict(kernel_shape=k, strides=list(conv.stride), pads=list(conv.padding) * 2)
        if self.qlinear:
            self.quantize(name, y)
            self.nodes.append(helper.make_node(
                "QLinearConv", [x_name, x_name + "_scale", x_name + "_zero_point", name + "_weight_quantized",
                                name + "_weight_scale", name + "_weight_zero_point", name + "_scale",
                                name + "_zero_point", name + "_bias_quantized"], [name], name=name, **attrs))
            return name, self.rounded(name, y)
        self.nodes.append(helper.make_node("Conv", [x_name, name + "_weight", name + "_bias"], [name],
                                           name=name, **attrs))
        return self.quantize(name, y), self.rounded(name, y)


def build(model, images, qlinear, block_kind, grids=None):
    wr = Writer(images, qlinear, grids)
    x = wr.x
    cur = wr.quantize("input", x)
    x = wr.rounded("input", x)
    if qlinear:
        wr.nodes.append(helper.make_node("QuantizeLinear", ["input_float", "input_scale", "input_zero_point"],
                                         ["input"], name="input_QuantizeLinear"))
    cur, x = wr.conv("conv1", cur, x, model.conv1, model.bn1, True)
    x = F.max_pool2d(x, 3, 2, 1)
    wr.nodes.append(helper.make_node("MaxPool", [cur], ["maxpool"], name="maxpool", kernel_shape=[3, 3],
                                     strides=[2, 2], pads=[1, 1, 1, 1]))
    wr.grids["maxpool"] = wr.grids[cur.replace("_dequantized", "")]
    if qlinear:
        wr.init("maxpool_scale", np.array(wr.grids["maxpool"][0], np.float32))
        wr.init("maxpool_zero_point", np.array(wr.grids["maxpool"][1], ACTIVATION_TYPE))
        cur = "maxpool"
    else:
        cur = wr.quantize("maxpool", x)
    x = wr.rounded("maxpool", x)
    for li, layer in enumerate([model.layer1, model.layer2, model.layer3, model.layer4], 1):
        for bi, blk in enumerate(layer):
            p = f"layer{li}.{bi}"
            identity_name, identity = cur, x
            if blk.downsample is not None:
                identity_name, identity = wr.conv(p + ".downsample", cur, x, blk.downsample[0],
                                                  blk.downsample[1], False)
            convs = [(blk.conv1, blk.bn1), (blk.conv2, blk.bn2)]
            if block_kind == "bottleneck":
                convs.append((blk.conv3, blk.bn3))
            for ci, (c, bn) in enumerate(convs, 1):
                cur, x = wr.conv(f"{p}.conv{ci}", cur, x, c, bn, ci < len(convs))
            x = F.relu(x + identity)
            add = p + ".add"
            x_unrounded = x
            if qlinear:
                wr.quantize(add, x)
                wr.nodes.append(helper.make_node(
                    "QLinearAdd", [cur, cur + "_scale", cur + "_zero_point", identity_name,
                                   identity_name + "_scale", identity_name + "_zero_point",
                                   add + "_scale", add + "_zero_point"], [add], name=add, domain="com.microsoft"))
                cur = add
            else:
                wr.nodes.append(helper.make_node("Add", [cur, identity_name], [add], name=add))
                cur = wr.quantize(add, x)
            x = wr.rounded(add, x_unrounded)
    x = x.mean((2, 3), keepdim=True)
    x_pool = x
    x = wr.rounded("pool", x)
    if qlinear:
        wr.quantize("pool", x_pool)
        wr.nodes.append(helper.make_node(
            "QLinearGlobalAveragePool", [cur, cur + "_scale", cur + "_zero_point", "pool_scale",
                                         "pool_zero_point"], ["pool"], name="pool", domain="com.microsoft",
            channels_last=0))
        cur = "pool"
        wr.nodes.append(helper.make_node("Flatten", [cur], ["flatten"], name="flatten", axis=1))
        wr.grids["flatten"] = wr.grids["pool"]
        wr.init("flatten_scale", np.array(wr.grids["pool"][0], np.float32))
        wr.init("flatten_zero_point", np.array(wr.grids["pool"][1], ACTIVATION_TYPE))
        cur = "flatten"
    else:
        wr.nodes.append(helper.make_node("GlobalAveragePool", [cur], ["pool"], name="pool"))
        cur = wr.quantize("pool", x_pool)
        wr.nodes.append(helper.make_node("Flatten", [cur], ["flatten"], name="flatten", axis=1))
        cur = wr.quantize("flatten", x.flatten(1))
    x = x.flatten(1)
    w = model.fc.weight.detach().numpy().astype(np.float32)
    b = model.fc.bias.detach().numpy().astype(np.float32)
    w_real, b_real = wr.weight("fc", w, cur, b)
    y = F.linear(x, torch.from_numpy(w_real), torch.from_numpy(b_real))
    if qlinear:
        # QLinearMatMul takes B as [K, N], scaled per column; the bias follows in float.
        product = F.linear(x, torch.from_numpy(w_real))
        wr.quantize("fc_matmul", product)
        wr.output = wr.rounded("fc_matmul", product) + torch.from_numpy(b_real)
        for init in wr.inits:
            if init.name == "fc_weight_quantized":
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).T.copy(), init.name))
        wr.nodes.append(helper.make_node(
            "QLinearMatMul", [cur, cur + "_scale", cur + "_zero_point", "fc_weight_quantized", "fc_weight_scale",
                              "fc_weight_zero_point", "fc_matmul_scale", "fc_matmul_zero_point"], ["fc_matmul"],
            name="fc_matmul"))
        wr.nodes.append(helper.make_node("DequantizeLinear", ["fc_matmul", "fc_matmul_scale",
                                                              "fc_matmul_zero_point"], ["fc_matmul_float"],
                                         name="fc_matmul_DequantizeLinear"))
        wr.init("fc_bias_float", b_real)
        wr.nodes.append(helper.make_node("Add", ["fc_matmul_float", "fc_bias_float"], ["logits"], name="fc_bias"))
        wr.inits = [i for i in wr.inits if not i.name.startswith("fc_bias_")] + \
            [i for i in wr.inits if i.name == "fc_bias_float"]
        output = "logits"
        input_name = "input_float"
    else:
        wr.nodes.append(helper.make_node("Gemm", [cur, "fc_weight", "fc_bias"], ["fc"], name="fc", transB=1))
        output = wr.quantize("fc", y)
        wr.output = wr.rounded("fc", y)
        input_name = "input"
    return wr, input_name, output


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet50", choices=["resnet18", "resnet34", "resnet50", "resnet101"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--calibration-images", type=int, default=16)
    ap.add_argument("--eval-images", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--qlinear", action="store_true")
    ap.add_argument("--activation-type", choices=["int8", "uint8"], default="int8",
                    help="activations' integers: INT8 (the quantizer's default, QInt8) or "
                         "UINT8 (QUInt8)")
    ap.add_argument("--strip", action="store_true",
                    help="write a test fixture: the INT8 weights without their "
                         "data (dims and type kept); scales and zero points stay")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    global ACTIVATION_TYPE
    ACTIVATION_TYPE = np.int8 if a.activation_type == "int8" else np.uint8
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(a.seed)
    calibration = photo_crops(CALIBRATION_PHOTOS, a.calibration_images, a.size, rng)
    evaluation = photo_crops(EVAL_PHOTOS, a.eval_images, a.size, rng)
    model = torchvision.models.__dict__[a.model]()
    # BatchNorm statistics from the calibration images, so that the depth keeps its scale.
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        model(torch.from_numpy(calibration))
    model.eval()
    kind = "bottleneck" if a.model in ("resnet50", "resnet101") else "basic"
    with torch.no_grad():
        wr, input_name, output = build(model, calibration, a.qlinear, kind)
        simulated = build(model, evaluation, a.qlinear, kind, wr.grids)[0].output.numpy()
    read = {i for n in wr.nodes for i in n.input}
    wr.inits = [i for i in wr.inits if i.name in read]
    graph = helper.make_graph(
        wr.nodes, f"{a.model}_{'qlinear' if a.qlinear else 'qdq'}",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, a.size, a.size])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 1000])], wr.inits)
    opsets = [helper.make_opsetid("", 13)]
    if a.qlinear:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    m = helper.make_model(graph, opset_imports=opsets, producer_name="tools/gen_qdq_model.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    if a.strip:
        for t in m.graph.initializer:
            if t.name.endswith("_weight_quantized"):
                t.ClearField("raw_data")
                t.ClearField("int32_data")
    onnx.save(m, a.out)
    stem = os.path.splitext(a.out)[0]
    np.save(stem + ".calibration.npy", calibration)
    np.save(stem + ".eval.npy", evaluation)
    np.save(stem + ".eval.simulated.npy", simulated)
    print(f"wrote {a.out}: {len(wr.nodes)} nodes, {len(wr.inits)} initializers; "
          f"{stem}.calibration.npy {calibration.shape}, {stem}.eval.npy {evaluation.shape}", file=sys.stderr)


if __name__ == "__main__":
    main()
