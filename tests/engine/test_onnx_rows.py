"""The w8a8 rewrite (llmplay/engine/onnx_rows.py): each row of activations gets its own int8 scale, so a row's
product is the same whatever its batch mates (the stock dynamic quantization's one scale per batch is not)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from llmplay.engine.onnx_rows import MODEL, quantize_rows  # noqa: E402


def _matmul_model(folder, weights: np.ndarray) -> None:
    """A float32 model: y = x @ W (W a constant, as in an exported decoder's projections)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", weights.shape[1]])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / MODEL, save_as_external_data=True, location="model.onnx.data")


def _run(folder, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / MODEL), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.fixture()
def weights():
    return np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)


def test_a_rows_product_does_not_depend_on_its_batch_mates(tmp_path, weights):
    folder = tmp_path / "w8a8"
    _matmul_model(folder, weights)
    quantize_rows(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.onnx.data"]  # staged files gone

    rng = np.random.default_rng(1)
    row, quiet, loud = (rng.normal(size=(1, 64)).astype(np.float32) for _ in range(3))
    loud *= 1000  # a batch mate with far larger activations
    with_quiet = _run(folder, np.concatenate([row, quiet]))
    with_loud = _run(folder, np.concatenate([row, loud]))
    alone = _run(folder, row)
    assert np.array_equal(with_quiet[0], alone[0]) and np.array_equal(with_loud[0], alone[0])
    # int8 on both sides: close to the float32 product (relative to its scale)
    exact = row @ weights
    assert np.abs(alone[0] - exact[0]).max() < 0.02 * np.abs(exact).max()


def test_the_stock_dynamic_quantization_couples_rows(tmp_path, weights):
    """Why the rewrite exists: one scale for the whole batch lets a loud batch mate change a row."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = tmp_path / "fp32"
    _matmul_model(source, weights)
    stock = tmp_path / "stock"
    stock.mkdir()
    quantize_dynamic(source / MODEL, stock / MODEL, weight_type=QuantType.QInt8, per_channel=True)
    rng = np.random.default_rng(1)
    row, loud = (rng.normal(size=(1, 64)).astype(np.float32) for _ in range(2))
    assert not np.array_equal(_run(stock, np.concatenate([row, loud * 1000]))[0], _run(stock, row)[0])


def test_a_model_without_activation_quantizers_is_refused(tmp_path, weights):
    """Nothing to quantize (no MatMul with constant weights): an error, not a silent float32 copy."""
    from onnx import TensorProto, helper

    folder = tmp_path / "plain"
    folder.mkdir()
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / MODEL)
    with pytest.raises(RuntimeError, match="no activation quantizers"):
        quantize_rows(folder)
    shutil.rmtree(folder)
