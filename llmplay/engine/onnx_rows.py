"""The ``onnx/w8a8`` precision: an ONNX float32 export turned into int8 weights and int8 activations, each row
quantized on its own.

Why: ONNX Runtime's int8 *weight-only* products (MatMulNBits, the ``int8`` export) ran prompts at about the speed
of float32 here (2560 prompt tokens: 4.7 s vs 3.8 s), while its integer GEMM (MatMulIntegerToFloat: uint8
activations x int8 weights, int32 sums) ran them in 1.9 s and batches of 32 replies 1.8x faster. Its stock dynamic
quantization scales the activations of the whole batch by one number, so a reply changed with its batch mates; here
every row (token) gets its own scale: integer sums are exact whatever the batch, so each reply equals that prompt
decoded alone, as evaluation batches must (tests/engine/test_onnx_batch.py).

Weights: per output channel, uint8 with a zero point per channel (``onnxruntime.quantization.quantize_dynamic``).
Not int8: on AVX2 CPUs (no VNNI) ONNX Runtime multiplies uint8 by int8 with an instruction that saturates the sum of
two products at 32767, which uint8 activations around 128 times int8 weights overflow (a product 10% off its float32
value in tests/engine/test_onnx_rows.py; uint8 x uint8 takes another path, 0.5%). Activations: per row,
``scale = max|x| / 127``, stored as uint8 around 128. The embedding table stays float32.

Run as ``python -m llmplay.engine.onnx_rows <folder>`` (in a subprocess: it holds the float32 model in memory).
"""

from __future__ import annotations

import sys
from pathlib import Path

MODEL, DATA = "model.onnx", "model.onnx.data"


def quantize_rows(folder: Path) -> None:
    """Rewrite ``folder``'s float32 ``model.onnx`` (and its external data) in place as the w8a8 model."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    staged = folder / "w8a8.staged.onnx"
    quantize_dynamic(
        folder / MODEL,
        staged,
        weight_type=QuantType.QUInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        use_external_data_format=True,
        extra_options={"MatMulConstBOnly": True},
    )
    model = onnx.load(staged)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)
    replaced = per_row_activations(model.graph, opset)
    if not replaced:
        raise RuntimeError("the quantized model has no activation quantizers to make per-row")
    for path in (folder / MODEL, folder / DATA, staged, folder / f"{staged.name}.data"):
        path.unlink(missing_ok=True)
    for path in folder.glob("*.staged.onnx.data"):
        path.unlink(missing_ok=True)
    onnx.save(model, folder / MODEL, save_as_external_data=True, all_tensors_to_one_file=True, location=DATA)


def per_row_activations(graph, opset: int = 18) -> int:
    """Replace each DynamicQuantizeLinear (one scale for the whole tensor) with a per-row quantizer giving the same
    outputs: uint8 values, a [..., 1] scale and the zero point 128. The products downstream (MatMulInteger, its
    cast and the multiply by the two scales, fused by ONNX Runtime) broadcast the per-row scale. Returns how many."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    constants = {
        "w8a8_axes": np.array([-1], np.int64),
        "w8a8_inv127": np.array(1.0 / 127.0, np.float32),
        "w8a8_tiny": np.array(1e-12, np.float32),  # an all-zero row: any scale gives zeros
        "w8a8_128": np.array(128.0, np.float32),
        "w8a8_0": np.array(0.0, np.float32),
        "w8a8_255": np.array(255.0, np.float32),
        "w8a8_zero_point": np.array(128, np.uint8),
    }
    nodes, replaced = [], 0

    def row_max(x: str, out: str):  # ReduceMax takes its axes as an input from opset 18, an attribute before
        if opset >= 18:
            return helper.make_node("ReduceMax", [x, "w8a8_axes"], [out], keepdims=1)
        return helper.make_node("ReduceMax", [x], [out], axes=[-1], keepdims=1)

    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        (x,), (q, scale, zero_point) = node.input, node.output
        p = f"{node.name}_w8a8"
        nodes += [
            helper.make_node("Abs", [x], [f"{p}_abs"]),
            row_max(f"{p}_abs", f"{p}_max"),
            helper.make_node("Mul", [f"{p}_max", "w8a8_inv127"], [f"{p}_raw"]),
            helper.make_node("Max", [f"{p}_raw", "w8a8_tiny"], [scale]),
            helper.make_node("Div", [x, scale], [f"{p}_div"]),
            helper.make_node("Round", [f"{p}_div"], [f"{p}_round"]),
            helper.make_node("Add", [f"{p}_round", "w8a8_128"], [f"{p}_shift"]),
            helper.make_node("Clip", [f"{p}_shift", "w8a8_0", "w8a8_255"], [f"{p}_clip"]),
            helper.make_node("Cast", [f"{p}_clip"], [q], to=TensorProto.UINT8),
            helper.make_node("Identity", ["w8a8_zero_point"], [zero_point]),
        ]
        replaced += 1
    if replaced:
        graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
        del graph.node[:]
        graph.node.extend(nodes)
    return replaced


if __name__ == "__main__":
    quantize_rows(Path(sys.argv[1]))
