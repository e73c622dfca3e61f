"""Deployable bundles for the mobile runtimes: model file, ``deploy.json`` and a runnable example.

``export_bundle(generator, out, "executorch")`` writes into ``out``:

``model.pte`` / ``model.ncnn.param`` + ``model.ncnn.bin`` / ``model.mlpackage``
    the program (fixed input shape: ExecuTorch, ncnn and Core ML plan memory for one shape).
``deploy.json``
    what an app needs to feed it: input size (H, W), channels and their order (RGB), layout (NCHW),
    normalisation (``x / 255``, then ``(x - mean) / std`` with mean = std = 0.5, so inputs lie in
    [-1, 1]; the output the same way back), dtype, rewrites, and the verification against PyTorch.
``run_example.py``
    a minimal Python program that runs the model on an image file (``python run_example.py in.png
    out.png``) with the runtime's own Python API, without gancompress.

Each export is verified where its runtime runs here (ExecuTorch's XNNPACK and ncnn run on x86):
the runtime's output against PyTorch's on real images (PSNR in dB over the [-1, 1] range, max
absolute error); a Core ML package is checked structurally (its operations and shapes).

Example:
    >>> export_bundle(load_generator("runs/demo/students/fgc"), "bundle/", "executorch",
    ...               size=(256, 256), images=calibration_inputs(g, "datasets/fonts", size=256))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..models import Generator
from ..utils.files import atomic_write_bytes, atomic_write_json

#: ``gancompress export --formats`` names of the mobile bundles
MOBILE_FORMATS = ("executorch", "executorch-int8", "ncnn", "coreml")
MEAN = STD = 0.5


def psnr_max_error(reference: torch.Tensor, output: torch.Tensor) -> tuple[float, float]:
    """PSNR (dB, peak-to-peak 2 for [-1, 1] images) and max absolute error of ``output`` vs ``reference``."""
    diff = (output.float() - reference.float()).flatten()
    mse = float((diff * diff).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    return psnr, float(diff.abs().max())


def verify(
    generator: Generator, run: Callable[..., torch.Tensor], images: Sequence[tuple[torch.Tensor, ...]]
) -> dict[str, Any]:
    """Compare a runtime (``run(*inputs) -> output``) with PyTorch on ``images``: worst PSNR and max error."""
    from .rewrite import deploy_module

    if not images:
        raise ConfigError("verification needs at least one input image")
    reference = deploy_module(generator)
    worst_psnr, worst_err = math.inf, 0.0
    for item in images:
        with torch.no_grad():
            expected = reference(*item)
        psnr, err = psnr_max_error(expected, run(*item))
        worst_psnr, worst_err = min(worst_psnr, psnr), max(worst_err, err)
    return {"images": len(images), "psnr_db_min": worst_psnr, "max_abs_error": worst_err}


def _channels(generator: Generator) -> int:
    return int(generator.example_input((8, 8), 1).shape[1]) if generator.family != "spade" else 0


def export_bundle(
    generator: Generator,
    out: str | os.PathLike,
    fmt: str,
    *,
    size: tuple[int, int] = (256, 256),
    images: Sequence[tuple[torch.Tensor, ...]] | None = None,
    images_kind: str = "real",
) -> dict[str, Any]:
    """Write the bundle of ``fmt`` (one of :data:`MOBILE_FORMATS`) into ``out``; return ``deploy.json``.

    ``images`` (inputs of the deploy module at ``size``, e.g. from
    :func:`gancompress.export.int8.calibration_inputs`) calibrate int8 and verify the export; without
    them the export is verified on a few random inputs (``images_kind`` says which).
    """
    from .. import __version__
    from .rewrite import RUNTIME_REWRITES, example_inputs

    if fmt not in MOBILE_FORMATS:
        raise ConfigError(f"unknown mobile format {fmt!r}; known: {', '.join(MOBILE_FORMATS)}")
    if generator.family in ("munit", "spade") and fmt != "coreml":
        raise ConfigError(f"{fmt} bundles take one RGB image; {generator.family} is exported to ONNX instead")
    if fmt == "executorch-int8" and not images:
        raise ConfigError("executorch-int8 needs real images (--data) to calibrate its int8 ranges")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = (int(size[0]), int(size[1]))
    if not images:
        gen = torch.Generator().manual_seed(0)
        x = example_inputs(generator, size, 1)[0]
        images = [(torch.rand(x.shape, generator=gen) * 2 - 1,) for _ in range(2)]
        images_kind = "random"
    kind = "executorch" if fmt.startswith("executorch") else fmt
    rewrites = tuple(RUNTIME_REWRITES[kind])
    meta: dict[str, Any] = {
        "gancompress_version": __version__,
        "runtime": kind,
        "family": generator.family,
        "arch": str(generator.arch),
        "dtype": "int8" if fmt == "executorch-int8" else "float32",
        "input_size": list(size),
        "channels": _channels(generator),
        "channel_order": "RGB",
        "layout": "NCHW",
        "batch": 1,
        "normalization": {"scale": 1 / 255, "mean": MEAN, "std": STD, "range": [-1.0, 1.0]},
        "output": "same layout and range as the input: image = (y * std + mean) * 255",
        "rewrites": list(rewrites),
    }
    if kind == "executorch":
        from .executorch import executorch_callable, executorch_version, export_executorch

        path, meta["delegation"] = export_executorch(
            generator,
            out / "model.pte",
            rewrites=rewrites,
            size=size,
            calibration=images if fmt == "executorch-int8" else None,
        )
        meta["runtime_version"] = executorch_version()
        run = executorch_callable(path)
        meta["verification"] = verify(generator, lambda *x: run(*x)[0], images)
    elif kind == "ncnn":
        from .ncnn import export_ncnn, ncnn_callable, ncnn_layers, ncnn_version

        path = export_ncnn(generator, out / "model.ncnn.param", rewrites=rewrites, size=size)
        meta["runtime_version"] = ncnn_version()
        meta["layers"] = ncnn_layers(path)
        meta["verification"] = verify(generator, ncnn_callable(path), images)
    else:
        from .coreml import coreml_ops, coremltools_version, export_coreml

        path = export_coreml(generator, out / "model.mlpackage", rewrites=rewrites, size=size)
        meta["runtime_version"] = coremltools_version()
        meta["structure"] = coreml_ops(path)
        meta["verification"] = "structural only: Core ML runs on Apple devices"
    meta["model"] = path.name
    if isinstance(meta["verification"], dict):
        meta["verification"]["inputs"] = images_kind
    atomic_write_json(out / "deploy.json", meta)
    atomic_write_bytes(out / "run_example.py", EXAMPLES[kind].encode())
    return meta


_EXAMPLE_HEAD = '''"""Run the exported generator on one image: python run_example.py input.png output.png

Reads deploy.json beside this file for the input size, channel order and normalisation.
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

here = Path(__file__).resolve().parent
meta = json.loads((here / "deploy.json").read_text())
height, width = meta["input_size"]
norm = meta["normalization"]
image = Image.open(sys.argv[1]).convert("RGB" if meta["channels"] == 3 else "L").resize((width, height))
pixels = np.asarray(image, dtype=np.float32).reshape(height, width, -1) * norm["scale"]
x = np.ascontiguousarray(((pixels - norm["mean"]) / norm["std"]).transpose(2, 0, 1)[None])  # 1×C×H×W
'''

_EXAMPLE_TAIL = """
pixels = (np.clip(y[0], -1, 1) * norm["std"] + norm["mean"]).transpose(1, 2, 0) / norm["scale"]
Image.fromarray(pixels.round().astype(np.uint8).squeeze()).save(sys.argv[2])
print(f"wrote {sys.argv[2]}")
"""

EXAMPLES = {
    "executorch": _EXAMPLE_HEAD
    + """
import torch
from executorch.runtime import Runtime

method = Runtime.get().load_program(here / meta["model"]).load_method("forward")
y = method.execute([torch.from_numpy(x)])[0].numpy()
"""
    + _EXAMPLE_TAIL,
    "ncnn": _EXAMPLE_HEAD
    + """
import ncnn

net = ncnn.Net()
net.opt.use_vulkan_compute = False
net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
net.load_param(str(here / meta["model"]))
net.load_model(str((here / meta["model"]).with_suffix(".bin")))
with net.create_extractor() as ex:
    ex.input(net.input_names()[0], ncnn.Mat(x[0]))
    _, out = ex.extract(net.output_names()[0])
    y = np.array(out)[None]
"""
    + _EXAMPLE_TAIL,
    "coreml": _EXAMPLE_HEAD
    + """
import coremltools as ct  # predictions need macOS or iOS; on Linux coremltools only converts

model = ct.models.MLModel(str(here / meta["model"]))
y = model.predict({"input": x})["output"]
"""
    + _EXAMPLE_TAIL,
}


def bundle_summary(meta: dict[str, Any]) -> str:
    """One line about a written bundle, for the CLI."""
    v = meta.get("verification")
    check = (
        f"PSNR {v['psnr_db_min']:.1f} dB, max error {v['max_abs_error']:.2g} on {v['images']} {v['inputs']} images"
        if isinstance(v, dict)
        else str(v)
    )
    return f"{meta['runtime']} {meta['dtype']} {meta['model']}: {check}"


def read_bundle(out: str | os.PathLike) -> dict[str, Any]:
    """The ``deploy.json`` of a bundle folder."""
    return json.loads((Path(out) / "deploy.json").read_text())
