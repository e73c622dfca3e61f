"""TorchScript export: the deploy form of a generator traced into a self-contained ``.pt`` program.

A TorchScript file holds the graph and the weights and runs without gancompress (``torch.jit.load``
in Python, ``torch::jit::load`` in C++). It is traced from the same deploy module as the ONNX graph
(fixed widths, exact rewrites), with the family's explicit inputs: the image (or SPADE's label map),
plus the style code for MUNIT. Loading it never unpickles Python objects.

Example:
    >>> export_torchscript("runs/demo/students/fast-gan-compression", "student.pt")
    >>> program = load_torchscript("student.pt")
    >>> program(torch.rand(1, 3, 64, 64) * 2 - 1).shape
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models import Generator
from ..utils.files import atomic_write_bytes
from .rewrite import DEFAULT_REWRITES, deploy, example_inputs


def export_torchscript(
    source: Generator | str | os.PathLike,
    path: str | os.PathLike,
    *,
    rewrites: Sequence[str] = DEFAULT_REWRITES,
    size: tuple[int, int] | None = None,
) -> Path:
    """Trace a generator (or a saved generator directory) to a TorchScript file, written atomically.

    The traced program accepts other batch sizes and spatial sizes than the tracing input's.
    """
    from .onnx import _as_generator

    generator = _as_generator(source)
    module = deploy(generator, rewrites)
    if size is None and generator.family != "spade":
        size = (64, 64)
    inputs = example_inputs(generator, size, batch=1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-level shape arithmetic
        program = torch.jit.trace(module, inputs, check_trace=False)
        program = torch.jit.freeze(program.eval())
    buf = io.BytesIO()
    torch.jit.save(program, buf, _extra_files={"gancompress.json": _meta(generator, rewrites)})
    return atomic_write_bytes(Path(path), buf.getvalue())


def _meta(generator: Generator, rewrites: Sequence[str]) -> str:
    import json

    from .. import __version__

    return json.dumps(
        {
            "gancompress_version": __version__,
            "family": generator.family,
            "arch": str(generator.arch),
            "rewrites": list(rewrites),
        }
    )


def load_torchscript(path: str | os.PathLike, map_location: str = "cpu") -> torch.jit.ScriptModule:
    """Load a TorchScript generator written by :func:`export_torchscript`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such TorchScript file")
    try:
        return torch.jit.load(str(path), map_location=map_location).eval()
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a TorchScript program ({str(exc).splitlines()[0]})") from None
