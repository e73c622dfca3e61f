"""Core ML export: a generator as an ``.mlpackage`` (ML program) for iOS and macOS, via coremltools.

coremltools converts on Linux but Core ML runs only on Apple devices, so here a conversion is
checked structurally (:func:`coreml_ops`: the ML program's operations, its input and output shapes),
not numerically. InstanceNorm converts to Core ML's ``instance_norm`` and ConvTranspose to
``conv_transpose``, both native MIL operations, so no rewrite beyond dropping the biases the norms
cancel is applied. The program computes in fp32 (``compute_precision`` FLOAT32): Core ML's default
of fp16 is a device setting that changes the output.

Needs the optional extra ``gancompress[coreml]`` (``pip install coremltools``).

Example:
    >>> export_coreml(student, "student.mlpackage", size=(256, 256))
    >>> coreml_ops("student.mlpackage")["conv"]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Generator
from .rewrite import RUNTIME_REWRITES, deploy, example_inputs, input_names

COREML_REWRITES = RUNTIME_REWRITES["coreml"]


def coremltools_version() -> str | None:
    """The installed coremltools version, or ``None`` without the optional extra."""
    try:
        import coremltools

        return str(coremltools.__version__)
    except Exception:
        return None


def export_coreml(
    source: Generator | str | os.PathLike,
    path: str | os.PathLike,
    *,
    rewrites: Sequence[str] = COREML_REWRITES,
    size: tuple[int, int] | None = None,
) -> Path:
    """Convert a generator (traced at ``size``) into an ``.mlpackage`` folder at ``path``.

    The package is written into a temporary folder and moved into place, so a failed conversion
    leaves no half-written package.
    """
    if coremltools_version() is None:
        raise ConfigError("coremltools is not installed: pip install 'gancompress[coreml]'")
    import coremltools as ct

    from .onnx import _as_generator

    generator = _as_generator(source)
    path = Path(path)
    if path.suffix != ".mlpackage":
        raise ConfigError(f"{path}: a Core ML ML program is a folder ending in .mlpackage")
    module = deploy(generator, rewrites)
    inputs = example_inputs(generator, size, batch=1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, inputs, check_trace=False)
        model = ct.convert(
            traced,
            inputs=[
                ct.TensorType(name=n, shape=tuple(t.shape))
                for n, t in zip(input_names(generator.family), inputs)
            ],
            outputs=[ct.TensorType(name="output")],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.iOS16,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gancompress-coreml-", dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        model.save(str(staged))
        if path.exists():
            shutil.rmtree(path)
        staged.rename(path)
    return path


def coreml_ops(path: str | os.PathLike) -> dict[str, Any]:
    """The operations of an ``.mlpackage``'s main function by type, with its input and output shapes."""
    if coremltools_version() is None:
        raise ConfigError("coremltools is not installed: pip install 'gancompress[coreml]'")
    import coremltools as ct

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such .mlpackage")
    spec = ct.utils.load_spec(str(path))
    ops: dict[str, int] = {}
    for block in spec.mlProgram.functions["main"].block_specializations.values():
        for op in block.operations:
            ops[op.type] = ops.get(op.type, 0) + 1

    def shape(feature) -> list[int]:  # noqa: ANN001 - a protobuf message
        return [int(d) for d in feature.type.multiArrayType.shape]

    return {
        "ops": ops,
        "inputs": {f.name: shape(f) for f in spec.description.input},
        "outputs": {f.name: shape(f) for f in spec.description.output},
    }
