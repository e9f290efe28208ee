#!/usr/bin/env python3
"""Writes the ONNX import fixtures, tests/fixtures/onnx/ (tests/io/test_onnx_import.cpp).

Run with the Debian interpreter that has python3-torch, torchvision and python3-onnx:
    /usr/bin/python3 tools/gen_onnx_fixtures.py

For each case, torchvision's model is exported with torch.onnx.export in one of the two
shapes torch writes for inference:
- "eval": training=TrainingMode.EVAL with constant folding: BatchNorm folded into the
  convolutions, whose new weights and biases get names like "onnx::Conv_497";
- "preserve": training=TrainingMode.PRESERVE with the model in eval(): BatchNormalization
  nodes kept, in inference mode (one output, running statistics), parameters under their
  state_dict names. (TrainingMode.TRAINING would export training-mode BN instead.)

Weights are far too big to commit, so each fixture is the exported model with every FLOAT
initializer's data stripped (name, dims and data type kept). The test refills every
initializer by name (tools/deterministic_values.py onnx_initializer_values, the same as
tests/support/deterministic_weights.h onnx_initializer_rule), feeds the deterministic
input, and compares with output.npy: what PyTorch computes for the refilled model.

That reference comes from a small interpreter of the ONNX graph built on
torch.nn.functional (run_onnx below). It is checked here first against the torch model's
own output on the complete export, so it is known to compute what the export means.

Cases: resnet18, resnet50 and resnext50_32x4d at opset 13 in both shapes, filled with the
project's deterministic state_dict values before export; resnet18 at opsets 11 and 17 in
both shapes, left at torchvision's own initialization, so that torch shares equal
initializers through Identity nodes (every BN weight equals every running_var), as it does
for a freshly initialized model. Opset 11 is exported with a fixed batch, the others with
a symbolic one.
"""

import io
import json
import os
import sys
from collections import Counter

import numpy as np
import onnx
import torch
import torch.nn.functional as F
import torchvision
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as tr  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "onnx")
INPUT_SHAPE = (1, 3, 64, 64)
SEED = 2024

CASES = [
    # name, model, opset, shape, deterministic weights before export, symbolic batch
    ("resnet18_eval_op13", "resnet18", 13, "eval", True, True),
    ("resnet18_preserve_op13", "resnet18", 13, "preserve", True, True),
    ("resnet50_eval_op13", "resnet50", 13, "eval", True, True),
    ("resnet50_preserve_op13", "resnet50", 13, "preserve", True, True),
    ("resnext50_32x4d_eval_op13", "resnext50_32x4d", 13, "eval", True, True),
    ("resnext50_32x4d_preserve_op13", "resnext50_32x4d", 13, "preserve", True, True),
    ("resnet18_eval_op11", "resnet18", 11, "eval", False, False),
    ("resnet18_preserve_op11", "resnet18", 11, "preserve", False, False),
    ("resnet18_eval_op17", "resnet18", 17, "eval", False, True),
    ("resnet18_preserve_op17", "resnet18", 17, "preserve", False, True),
]


# ---------------------------------------------------------------------------------------
# A torch.nn.functional interpreter of the ONNX operators torch writes for a ResNet
# ---------------------------------------------------------------------------------------


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pad_hw(x, pads, value=0.0):
    """x padded by ONNX pads [top, left, bottom, right]."""
    top, left, bottom, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


def _symmetric(pads):
    return pads[0] == pads[2] and pads[1] == pads[3]


def run_onnx(model, x, initializers):
    """Evaluates `model`'s graph on x with `initializers` (name -> torch tensor)."""
    env = dict(initializers)
    graph = model.graph
    real_inputs = [i.name for i in graph.input if i.name not in initializers]
    assert len(real_inputs) == 1, real_inputs
    env[real_inputs[0]] = x
    for node in graph.node:
        a = _attrs(node)
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"), node
        if op == "Conv":
            pads = list(a.get("pads", [0, 0, 0, 0]))
            xin = ins[0]
            if not _symmetric(pads):
                xin, pads = _pad_hw(xin, pads), [0, 0, 0, 0]
            y = F.conv2d(xin, ins[1], ins[2] if len(ins) > 2 else None,
                         stride=tuple(a.get("strides", [1, 1])), padding=(pads[0], pads[1]),
                         dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))
        elif op == "BatchNormalization":
            assert a.get("training_mode", 0) == 0 and len(node.output) == 1, node
            y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], training=False,
                             eps=a.get("epsilon", 1e-5))
        elif op == "Relu":
            y = F.relu(ins[0])
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "MaxPool":
            pads = list(a.get("pads", [0, 0, 0, 0]))
            assert _symmetric(pads), node
            y = F.max_pool2d(ins[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])),
                             (pads[0], pads[1]), tuple(a.get("dilations", [1, 1])),
                             ceil_mode=bool(a.get("ceil_mode", 0)))
        elif op == "GlobalAveragePool":
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            assert a.get("axis", 1) == 1, node
            y = torch.flatten(ins[0], 1)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.t()
            if a.get("transB", 0):
                B = B.t()
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "Identity":
            y = ins[0]
        elif op == "Constant":
            y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        else:
            raise NotImplementedError(f"run_onnx: operator {op} ({node.name})")
        assert len([o for o in node.output if o]) == 1, node
        env[node.output[0]] = y
    assert len(graph.output) == 1
    return env[graph.output[0].name]


def float_initializers(model):
    return [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]


def export(case):
    name, model_name, opset, shape, deterministic, symbolic_batch = case
    if deterministic:
        model = getattr(torchvision.models, model_name)()
        tr.fill_deterministic(model, SEED)
    else:
        torch.manual_seed(SEED)
        model = getattr(torchvision.models, model_name)()
    model.eval()
    mode = torch.onnx.TrainingMode.EVAL if shape == "eval" else torch.onnx.TrainingMode.PRESERVE
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(INPUT_SHAPE), buffer, opset_version=opset,
                      training=mode, do_constant_folding=True, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes=({"input": {0: "batch"}, "output": {0: "batch"}}
                                    if symbolic_batch else None))
    onnx_model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(onnx_model)
    return model, onnx_model


def write_case(case):
    name, model_name, opset, shape, _, _ = case
    model, onnx_model = export(case)
    ops = Counter(n.op_type for n in onnx_model.graph.node)
    assert (ops["BatchNormalization"] > 0) == (shape == "preserve"), (name, ops)

    # The interpreter on the complete export must compute what the torch model does.
    x = tr.deterministic_tensor(SEED, "input", INPUT_SHAPE)
    original = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
                for t in onnx_model.graph.initializer}
    with torch.no_grad():
        expected = model(x)
        got = run_onnx(onnx_model, x, original)
    err = float((got - expected).abs().max() / expected.abs().max())
    assert err <= tr.TOLERANCE / 10, f"{name}: the interpreter misses torch by {err:.2e}"

    # The refilled model, in float32 (the reference) and float64 (its conditioning).
    refilled = {}
    for t in onnx_model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            refilled[t.name] = torch.from_numpy(tr.onnx_initializer_values(SEED, t.name, t.dims))
        else:
            refilled[t.name] = original[t.name]
    with torch.no_grad():
        output = run_onnx(onnx_model, x, refilled)
        output64 = run_onnx(onnx_model, x.double(),
                            {k: v.double() if v.is_floating_point() else v
                             for k, v in refilled.items()})
    scale = float(output64.abs().max())
    err64 = float((output.double() - output64).abs().max()) / scale
    assert scale > 0 and err64 <= tr.TOLERANCE / 10, f"{name}: float32 misses float64 by {err64}"

    for t in float_initializers(onnx_model):
        t.ClearField("raw_data")
        t.ClearField("float_data")
    os.makedirs(OUT_DIR, exist_ok=True)
    onnx.save(onnx_model, os.path.join(OUT_DIR, name + ".onnx"))
    tr.save_npy(os.path.join(OUT_DIR, name + ".output.npy"), output)
    print(f"{name}: {len(onnx_model.graph.node)} nodes {dict(ops)}, interpreter vs torch "
          f"{err:.1e}, float32 vs float64 {err64:.1e}, max |y| {scale:.3g}")
    return {"name": name, "model": model_name, "opset": opset, "shape": shape, "seed": SEED,
            "input_shape": list(INPUT_SHAPE), "onnx_ops": dict(sorted(ops.items()))}


def main():
    tr.setup_torch(threads=1)
    cases = [write_case(case) for case in CASES]
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        json.dump({"generator": "tools/gen_onnx_fixtures.py", "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
