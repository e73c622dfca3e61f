"""ExecuTorch export: a generator as a ``.pte`` program lowered to the XNNPACK delegate, fp32 or int8.

ExecuTorch is PyTorch's on-device runtime (Android, iOS, embedded Linux); XNNPACK is its CPU backend,
the same kernels on an Arm phone and on x86, so a ``.pte`` file measured here runs the code it will
run on a phone. The program is exported from the deploy module with the rewrites that let XNNPACK
take the whole graph (:data:`~gancompress.export.rewrite.RUNTIME_REWRITES` ``["executorch"]``:
InstanceNorm as primitives, reflection padding as slices): without them every norm and padding runs
in ExecuTorch's portable (reference) kernels between dozens of delegate calls.

int8 is PT2E post-training quantisation with the XNNPACK quantizer (symmetric, per-channel weights,
per-tensor activations), calibrated on real images: convolutions, transposed convolutions and adds
run in int8; the norms' mean/rsqrt arithmetic stays fp32 between quantise/dequantise pairs (XNNPACK
has no int8 form of it), and :func:`delegation` says how many of those there are.

Needs the optional extra ``gancompress[executorch]`` (``pip install executorch``).

Example:
    >>> export_executorch(student, "student.pte")
    >>> run = executorch_callable("student.pte", threads=1)
    >>> run(torch.rand(1, 3, 256, 256) * 2 - 1)[0].shape
"""

from __future__ import annotations

import collections
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Generator
from ..utils.files import atomic_write_bytes
from .rewrite import RUNTIME_REWRITES, deploy, example_inputs

EXECUTORCH_REWRITES = RUNTIME_REWRITES["executorch"]


def executorch_version() -> str | None:
    """The installed ExecuTorch version, or ``None`` without the optional extra."""
    try:
        from importlib.metadata import version

        import executorch  # noqa: F401

        return version("executorch")
    except Exception:  # ImportError, or a broken install: either way there is no runtime
        return None


def _require() -> None:
    if executorch_version() is None:
        raise ConfigError("ExecuTorch is not installed: pip install 'gancompress[executorch]'")


def _quantize(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], calibration: Iterable[Any]):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(module, inputs).module(), quantizer)
    seen = 0
    with torch.no_grad():
        for batch in calibration:
            batch = batch if isinstance(batch, (tuple, list)) else (batch,)
            prepared(*batch)
            seen += 1
    if not seen:
        raise ConfigError("int8 ExecuTorch export needs at least one calibration input (real images)")
    return convert_pt2e(prepared)


def lower_executorch(
    generator: Generator,
    *,
    rewrites: Sequence[str] = EXECUTORCH_REWRITES,
    size: tuple[int, int] | None = None,
    calibration: Iterable[Any] | None = None,
):
    """The deploy module exported and lowered to XNNPACK: ``(edge_program_manager, example_inputs)``.

    With ``calibration`` (inputs of the deploy module, e.g. from
    :func:`gancompress.export.int8.calibration_inputs`) the program is quantised to int8 first. The
    input shape is fixed (ExecuTorch plans its memory for it): ``size`` or the family's default.
    """
    _require()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    module = deploy(generator, rewrites)
    inputs = example_inputs(generator, size, batch=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # export's deprecation chatter about pytree registrations
        if calibration is not None:
            module = _quantize(module, inputs, calibration)
        program = torch.export.export(module, inputs)
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return edge, inputs


def delegation(edge) -> dict[str, Any]:  # noqa: ANN001 - executorch's EdgeProgramManager
    """How much of a lowered program XNNPACK runs: delegate calls and the ops left outside, by name."""
    graph = edge.exported_program().graph_module.graph
    outside: collections.Counter[str] = collections.Counter()
    calls = 0
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if name == "executorch_call_delegate":
            calls += 1
        elif name != "getitem":
            outside[str(getattr(node.target, "_name", name)).removeprefix("aten::")] += 1
    return {"delegate_calls": calls, "ops_outside_delegate": dict(outside)}


def export_executorch(
    source: Generator | str | os.PathLike,
    path: str | os.PathLike,
    *,
    rewrites: Sequence[str] = EXECUTORCH_REWRITES,
    size: tuple[int, int] | None = None,
    calibration: Iterable[Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a ``.pte`` program (fp32, or int8 with ``calibration``) atomically; return it and its
    :func:`delegation` summary."""
    from .onnx import _as_generator

    generator = _as_generator(source)
    edge, _ = lower_executorch(generator, rewrites=rewrites, size=size, calibration=calibration)
    summary = delegation(edge)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buffer = edge.to_executorch().buffer
    return atomic_write_bytes(Path(path), buffer), summary


def set_executorch_threads(threads: int) -> None:
    """Size ExecuTorch's (process-wide) XNNPACK thread pool."""
    _require()
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    _unsafe_reset_threadpool(threads)


def executorch_callable(
    path: str | os.PathLike, threads: int | None = None
) -> Callable[..., list[torch.Tensor]]:
    """Load a ``.pte`` file into the ExecuTorch runtime: a function of the inputs returning the outputs."""
    _require()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ExecuTorch program")
    from executorch.runtime import Runtime

    if threads is not None:
        set_executorch_threads(threads)
    try:
        method = Runtime.get().load_program(path).load_method("forward")
    except Exception as exc:
        raise CheckpointError(f"{path}: not an ExecuTorch program ({exc})") from None

    def run(*inputs: torch.Tensor) -> list[torch.Tensor]:
        return list(method.execute([t.contiguous() for t in inputs]))

    return run
