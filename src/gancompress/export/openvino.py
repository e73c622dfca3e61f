"""OpenVINO: run exported ONNX graphs (fp32, and the int8 QDQ graph) in Intel's CPU runtime.

OpenVINO is an optional extra (``pip install gancompress[openvino]``). It reads the same files as
ONNX Runtime: the fp32 graph of :func:`gancompress.export.onnx.export_onnx` and the int8 QDQ graph of
:func:`gancompress.export.int8.quantize_onnx_int8` (its CPU plugin turns QuantizeLinear /
DequantizeLinear pairs into int8 convolutions itself, so no other quantisation tool is needed).

Why it is here: small separable generators spend much of their time in operators that ONNX Runtime
runs poorly on a CPU (InstanceNorm outside the blocked layout, depthwise and 1×1 convolutions with
few channels). OpenVINO's CPU plugin has a fused InstanceNorm (MVN) that keeps the blocked layout and
takes the following ReLU as a post-op, oneDNN's brgemm kernels for 1×1 and depthwise convolutions,
and compiles for one fixed input shape (:func:`openvino_model` reshapes a dynamic graph to it).

Precision is pinned: ``INFERENCE_PRECISION_HINT`` is ``f32`` for both graphs, because on CPUs with
bf16 support OpenVINO otherwise lowers fp32 work to bf16 by default, which would make the "fp32"
figure something else.

Example:
    >>> compiled = openvino_model("g.onnx", threads=1, shape=(1, 3, 256, 256))
    >>> out = run_openvino(compiled, x)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError

PRECISIONS = ("f32", "bf16")


def openvino_available() -> bool:
    """Whether the optional ``openvino`` package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_version() -> str | None:
    """The installed OpenVINO version, or None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def _require_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ConfigError(
            "OpenVINO is not installed: pip install 'gancompress[openvino]' (or pip install openvino)"
        ) from None
    return openvino


def openvino_model(
    path: str | os.PathLike,
    *,
    threads: int = 1,
    shapes: Sequence[Sequence[int]] | None = None,
    precision: str = "f32",
    profile: bool = False,
) -> Any:
    """Compile an ONNX file for OpenVINO's CPU plugin, for latency: one stream, ``threads`` threads.

    ``shapes`` (one per graph input, in order) fixes the input shapes, so OpenVINO compiles a
    static graph (its shape-specialised kernels and fusions); without it a dynamic graph stays
    dynamic. ``precision`` is the inference precision of the floating-point work (``f32`` keeps fp32
    exactly fp32). ``profile`` turns on per-layer counters (``request.profiling_info``).
    """
    ov = _require_openvino()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file")
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    core = ov.Core()
    try:
        model = core.read_model(str(path))
    except Exception as exc:  # OpenVINO raises its own exception types for unreadable graphs
        raise CheckpointError(f"{path}: OpenVINO cannot read it ({exc})") from None
    if shapes is not None:
        if len(shapes) != len(model.inputs):
            raise ConfigError(
                f"{path}: the graph takes {len(model.inputs)} input(s), got {len(shapes)} shapes"
            )
        model.reshape({port.get_any_name(): list(map(int, s)) for port, s in zip(model.inputs, shapes)})
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
        "PERF_COUNT": profile,
    }
    try:
        return core.compile_model(model, "CPU", config)
    except Exception as exc:
        raise CheckpointError(f"{path}: OpenVINO cannot compile it ({exc})") from None


def run_openvino(compiled: Any, *inputs: torch.Tensor, request: Any | None = None) -> torch.Tensor:
    """Run a compiled OpenVINO model on torch tensors (in the graph's input order); returns a tensor."""
    if len(compiled.inputs) != len(inputs):
        raise ConfigError(f"the graph takes {len(compiled.inputs)} input(s), got {len(inputs)}")
    request = request if request is not None else compiled.create_infer_request()
    feed = {i: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for i, t in enumerate(inputs)}
    request.infer(feed)
    return torch.from_numpy(np.array(request.get_output_tensor(0).data, copy=True))


class OpenVinoGenerator(torch.nn.Module):
    """An ONNX graph run by OpenVINO behind a ``nn.Module`` interface (like ``OrtGenerator``), so
    quality metrics can score it with the same code as a PyTorch generator.

    The graph is compiled once per input shape (evaluation uses a handful): OpenVINO's static
    compilation is its fast path, and its shape inference of a dynamic graph can fail where the
    spatial size enters arithmetic (the odd-size padding of ``space_to_depth``), giving empty
    outputs for MUNIT.

    Example:
        >>> evaluate_generator(OpenVinoGenerator("g.int8.onnx"), data_root)
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1) -> None:
        super().__init__()
        self.path = str(path)
        self.threads = threads
        self._compiled: dict[tuple[tuple[int, ...], ...], tuple[Any, Any]] = {}
        openvino_model(path, threads=threads)  # fail now, naming the file, if it cannot be read

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        key = tuple(tuple(t.shape) for t in inputs)
        if key not in self._compiled:
            compiled = openvino_model(self.path, threads=self.threads, shapes=[list(k) for k in key])
            self._compiled[key] = (compiled, compiled.create_infer_request())
        compiled, request = self._compiled[key]
        return run_openvino(compiled, *inputs, request=request)
