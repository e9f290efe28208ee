#!/usr/bin/env python3
"""Validates ONNX files with the reference checker (python3-onnx), shape inference included.

Usage:
  tools/check_onnx.py MODEL.onnx [MODEL.onnx ...]

For each file: onnx.checker.check_model(full_check=True), which also runs strict shape
inference, then prints one line: the file, its opset, node and initializer counts and the
shapes inference found for the graph's output. Exits 1 if any file fails, 2 when the
onnx package cannot be imported (Debian: apt-get install python3-onnx; run with the
interpreter that has it, e.g. /usr/bin/python3).
"""
import sys

try:
    import onnx
except ImportError as e:
    print(f"check_onnx: cannot import onnx ({e}); install python3-onnx", file=sys.stderr)
    sys.exit(2)


def dims(value_info):
    out = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?")
    return "[" + ", ".join(out) + "]"


def check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    outputs = ", ".join(f"{o.name} {dims(o)}" for o in inferred.graph.output)
    print(f"{path}: ok, opset {opset.get('ai.onnx')}, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers, {outputs}")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failed = 0
    for path in sys.argv[1:]:
        try:
            check(path)
        except Exception as e:  # the checker raises several types; report each the same way
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"{path}: FAILED: {first_line}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
