"""ncnn export: a generator as an ncnn ``.param`` + ``.bin`` pair, converted by pnnx.

ncnn is Tencent's inference library for phones (Android, iOS, with Arm NEON and Vulkan kernels; x86
too, which is how it is verified and measured here). pnnx traces the deploy module and writes ncnn
layers directly: the ResNet generator becomes Padding (reflect), Convolution, InstanceNorm,
Deconvolution, ReLU, BinaryOp and TanH layers, each one of ncnn's native kernels, so no rewrite is
needed for InstanceNorm or ConvTranspose (:data:`~gancompress.export.rewrite.RUNTIME_REWRITES`
``["ncnn"]`` only drops the biases the norms cancel). The pixel-shuffle rewrites are left out: their
6-D reshapes do not fit ncnn's 4-D blobs.

ncnn runs one image at a time (no batch axis) and is measured in fp32 storage and arithmetic here
(``use_fp16_*`` off): ncnn's fp16 paths are a phone setting and change the output.

int8 is not offered: ncnn quantises with its ``ncnn2table`` and ``ncnn2int8`` tools, which are built
from ncnn's C++ sources and not shipped in the ``ncnn`` or ``pnnx`` wheels.

Needs the optional extra ``gancompress[ncnn]`` (``pip install pnnx ncnn``).

Example:
    >>> export_ncnn(student, "student.ncnn.param")   # and student.ncnn.bin beside it
    >>> run = ncnn_callable("student.ncnn.param", threads=1)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Generator
from .rewrite import RUNTIME_REWRITES, deploy, example_inputs

NCNN_REWRITES = RUNTIME_REWRITES["ncnn"]


def ncnn_version() -> str | None:
    """The installed ncnn Python package's version (``None`` without it, or without pnnx to export)."""
    try:
        from importlib.metadata import version

        import ncnn  # noqa: F401

        return version("ncnn")
    except Exception:
        return None


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(f"{module} is not installed: pip install 'gancompress[ncnn]'") from None


def bin_path(param: str | os.PathLike) -> Path:
    """The weights file beside an ncnn ``.param`` file (``x.ncnn.param`` → ``x.ncnn.bin``)."""
    return Path(param).with_suffix(".bin")


def export_ncnn(
    source: Generator | str | os.PathLike,
    path: str | os.PathLike,
    *,
    rewrites: Sequence[str] = NCNN_REWRITES,
    size: tuple[int, int] | None = None,
) -> Path:
    """Convert a generator with pnnx into ``path`` (``.param``) and the ``.bin`` beside it.

    pnnx writes into the folder of the traced file, so it works in a temporary folder and the two ncnn
    files are moved into place afterwards.
    """
    _require("pnnx")
    import pnnx

    from .onnx import _as_generator

    generator = _as_generator(source)
    if generator.family == "munit":
        raise ConfigError("ncnn export takes one input; MUNIT (content + style) is exported to ONNX instead")
    path = Path(path)
    if path.suffix != ".param":
        raise ConfigError(f"{path}: an ncnn model file ends in .param (its weights go beside it in .bin)")
    module = deploy(generator, rewrites)
    inputs = example_inputs(generator, size, batch=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gancompress-pnnx-") as tmp:
        traced = Path(tmp) / "model.pt"
        with warnings.catch_warnings(), _stdout_to(Path(tmp) / "pnnx.log"):
            warnings.simplefilter("ignore")
            pnnx.export(module, str(traced), inputs)
        param, weights = Path(tmp) / "model.ncnn.param", Path(tmp) / "model.ncnn.bin"
        if not param.is_file() or not weights.is_file():
            log = (Path(tmp) / "pnnx.log").read_text(errors="replace")[-2000:]
            raise ConfigError(f"pnnx wrote no ncnn model for {generator.family}; its log ends:\n{log}")
        shutil.move(str(weights), bin_path(path))
        shutil.move(str(param), path)
    return path


@contextlib.contextmanager
def _stdout_to(path: Path):
    """Send file descriptor 1 to ``path`` for a block: pnnx prints its passes from C++, which would
    otherwise land in the middle of a command's JSON output."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def ncnn_layers(path: str | os.PathLike) -> dict[str, int]:
    """Layer types of an ncnn ``.param`` file and how often each occurs (a structural check)."""
    counts: dict[str, int] = {}
    for line in Path(path).read_text().splitlines()[2:]:
        if line.strip():
            kind = line.split()[0]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def ncnn_callable(path: str | os.PathLike, threads: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """Load an ncnn model: a function of a ``(1, C, H, W)`` tensor returning the ``(1, C, H, W)`` output."""
    _require("ncnn")
    import ncnn
    import numpy as np

    path = Path(path)
    if not path.is_file() or not bin_path(path).is_file():
        raise CheckpointError(f"{path}: no such ncnn model (.param with its .bin beside it)")
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.use_vulkan_compute = False
    # fp32 storage and arithmetic: ncnn otherwise picks fp16 where the CPU has it, a lossy setting
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    if net.load_param(str(path)) != 0 or net.load_model(str(bin_path(path))) != 0:
        raise CheckpointError(f"{path}: ncnn could not read this model")
    names_in, names_out = net.input_names(), net.output_names()

    def run(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            raise ConfigError(f"ncnn runs one image at a time; got a batch of {x.shape[0]}")
        array = np.ascontiguousarray(x.detach().cpu().numpy()[0], dtype=np.float32)
        with net.create_extractor() as ex:
            ex.input(names_in[0], ncnn.Mat(array))
            _, out = ex.extract(names_out[0])
            return torch.from_numpy(np.array(out)).unsqueeze(0)

    return run
