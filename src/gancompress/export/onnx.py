"""ONNX fp32 export (dynamic batch and spatial size) and ONNX Runtime sessions with explicit threads.

The exported graph is the generator's deploy form (:mod:`gancompress.export.rewrite`): fixed widths,
with the exact speed rewrites applied by default. SPADE takes its one-hot label map as ``label``;
MUNIT takes the content image as ``input`` and an explicit style code as ``style`` (N × style_dim).

The graph is traced with PyTorch's TorchScript-based ONNX exporter (``dynamo=False``): it needs no
extra package (the newer exporter needs ``onnxscript``) and yields the plain Conv/InstanceNorm/Pad
graph ONNX Runtime's CPU fusions are written for.

Example:
    >>> path = export_onnx(load_generator("runs/demo/teacher"), "runs/demo/teacher.onnx")
    >>> sess = ort_session(path, threads=2)
    >>> out = run_session(sess, torch.rand(1, 3, 64, 64) * 2 - 1)
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import CheckpointError, ConfigError
from ..models import Generator
from ..utils.files import atomic_write_bytes
from .rewrite import DEFAULT_REWRITES, deploy, example_inputs, input_names

DEFAULT_OPSET = 17
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def _as_generator(source: Generator | str | os.PathLike) -> Generator:
    if isinstance(source, Generator):
        return source
    from .saved import load_generator

    return load_generator(source)


def export_onnx(
    source: Generator | str | os.PathLike,
    path: str | os.PathLike,
    *,
    rewrites: Sequence[str] = DEFAULT_REWRITES,
    size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
) -> Path:
    """Export a generator (or a saved generator directory) to an fp32 ONNX file, written atomically.

    ``size`` is the spatial size of the tracing input (default: the family's default size, small
    families' tiny sizes work too); with ``dynamic`` the batch, height and width axes stay free.

    Example:
        >>> export_onnx("runs/demo/students/fast-gan-compression", "student.onnx")
    """
    generator = _as_generator(source)
    module = deploy(generator, rewrites)
    if size is None and generator.family != "spade":
        size = (64, 64)  # a small trace input: the graph does not depend on it when dynamic
    inputs = example_inputs(generator, size, batch=1)
    names = list(input_names(generator.family))
    axes: dict[str, dict[int, str]] = {}
    if dynamic:
        axes = {"output": {0: "batch", 2: "height", 3: "width"}}
        axes[names[0]] = {0: "batch", 2: "height", 3: "width"}
        for extra in names[1:]:
            axes[extra] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the legacy exporter is deprecated upstream and warns on every Python-level shape check
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                module,
                inputs,
                buf,
                dynamo=False,
                input_names=names,
                output_names=["output"],
                dynamic_axes=axes or None,
                opset_version=opset,
                do_constant_folding=True,
            )
    import onnx

    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    meta = {
        "gancompress_version": __version__,
        "family": generator.family,
        "arch": str(generator.arch),
        "rewrites": ",".join(rewrites),
        "inputs": ",".join(names),
        "precision": "fp32",
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return atomic_write_bytes(Path(path), model.SerializeToString())


def ort_session(
    path: str | os.PathLike,
    *,
    threads: int = 1,
    optimization: str = "all",
    optimized_path: str | os.PathLike | None = None,
    profile_prefix: str | None = None,
) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread.

    ``optimization`` picks ORT's graph optimisation level ("all" includes the NCHWc layout
    transform and conv+activation fusions); ``optimized_path`` saves the optimised graph so a
    deployment can load it without re-optimising.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file")
    if optimization not in OPTIMIZATION_LEVELS:
        raise ConfigError(f"optimization must be one of {OPTIMIZATION_LEVELS}, got {optimization!r}")
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable graphs
        raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({exc})") from None


def run_session(session: Any, *inputs: torch.Tensor) -> torch.Tensor:
    """Run an ORT session on torch tensors (fed in the graph's input order) and return a tensor."""
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ConfigError(f"the ONNX graph takes {len(names)} input(s) {names}, got {len(inputs)}")
    feed = {
        n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for n, t in zip(names, inputs)
    }
    return torch.from_numpy(session.run(None, feed)[0])


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` gancompress wrote into an exported graph."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


class OrtGenerator(torch.nn.Module):
    """An ONNX Runtime session behind a ``nn.Module`` interface, so quality metrics can score exported
    graphs (int8 ones included) with the same code as PyTorch generators.

    Example:
        >>> evaluate_generator(OrtGenerator("g.int8.onnx"), data_root)
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1, optimization: str = "all") -> None:
        super().__init__()
        self.path = str(path)
        self.session = ort_session(path, threads=threads, optimization=optimization)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return run_session(self.session, *inputs)
