"""ONNX int8: static post-training quantisation (QDQ) calibrated on real images.

``quantize_onnx_int8`` runs ``onnxruntime.quantization.quantize_static`` on an fp32 graph from
:func:`gancompress.export.onnx.export_onnx`: per-channel symmetric int8 weights, uint8 activations
with ranges measured on calibration inputs, in the QDQ format (QuantizeLinear/DequantizeLinear pairs
that ORT fuses into integer kernels where it has them). Any iterable of input tensors (or tuples of
tensors, for MUNIT's image + style) calibrates; :func:`calibration_inputs` draws them from a dataset.

Why the defaults: generator activations are not centred (ReLU outputs, Tanh-bound images), so
asymmetric uint8 keeps their resolution; per-channel weights matter for narrow compressed layers
whose channels differ in scale; InstanceNorm is left in fp32 (ORT has no int8 kernel for it) so the
statistics that define the style are computed exactly. Activation ranges are the 99.999th percentile
of each tensor's histogram rather than its min/max: a few outlier activations of a trained teacher
otherwise stretch the 256 levels over a range the other pixels never use (a third-party CycleGAN
teacher scored 14.2 dB against its fp32 output with min/max, 26.1 dB with percentile). The first
and last convolutions stay fp32: the first sees the raw image, the last writes it (before Tanh),
and together they are under 1 % of a ResNet teacher's MACs. The residual sums (``Add``) stay fp32
too: re-quantising the trunk after each of nine blocks compounds the error. Measured in docs/deployment.md §int8
(``bench/int8_quality.py``). ``gancompress export`` then checks the result against fp32 on held-out
images (:func:`check_int8_fidelity`).

Example:
    >>> fp32 = export_onnx(g, "g.onnx")
    >>> int8 = quantize_onnx_int8(fp32, "g.int8.onnx", calibration_inputs(g, "datasets/fonts"))
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError, GanCompressError, StorageError
from ..models import Generator
from ..utils.files import atomic_write_bytes, storage_error
from .rewrite import input_names

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
#: defaults chosen on measurements (docs/deployment.md §int8): see the module docstring
DEFAULT_METHOD = "percentile"
DEFAULT_PERCENTILE = 99.999
DEFAULT_KEEP_FP32: tuple[str, ...] = ("first", "last", "Add")
#: below this int8-vs-fp32 PSNR (dB) ``gancompress export`` fails unless --allow-lossy
FIDELITY_THRESHOLD_DB = 30.0
#: operators given int8 inputs and outputs; the rest (InstanceNorm, Tanh, ...) stay fp32.
#: ConvTranspose: OpenVINO runs it in int8 (graphs without the ``convt_pixelshuffle`` rewrite);
#: ONNX Runtime, which has no int8 ConvTranspose kernel, dequantises around it.
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Relu", "DepthToSpace", "Concat")


class _Reader:
    """ORT's CalibrationDataReader protocol over an iterable of tensors / tuples of tensors."""

    def __init__(self, names: list[str], batches: Iterable[torch.Tensor | tuple[torch.Tensor, ...]]):
        self.names = names
        self._it: Iterator = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._it, None)
        if item is None:
            return None
        tensors = (item,) if isinstance(item, torch.Tensor) else tuple(item)
        if len(tensors) != len(self.names):
            raise ConfigError(
                f"calibration item {self.count} has {len(tensors)} tensor(s); the graph takes {self.names}"
            )
        self.count += 1
        return {
            n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
            for n, t in zip(self.names, tensors)
        }

    def rewind(self) -> None:  # pragma: no cover - only some calibrators call it
        pass


def quantize_onnx_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: Iterable[torch.Tensor | tuple[torch.Tensor, ...]],
    *,
    method: str = DEFAULT_METHOD,
    per_channel: bool = True,
    op_types: tuple[str, ...] | None = None,
    keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32,
    percentile: float = DEFAULT_PERCENTILE,
) -> Path:
    """Quantise an fp32 ONNX generator to int8 (QDQ), calibrating on ``calibration``; written atomically.

    ``keep_fp32`` names layers left in fp32: ``"first"`` / ``"last"`` (the first and last Conv or
    ConvTranspose of the graph), op types (``"Add"``: the residual sums) or node names. ``percentile`` is the histogram percentile the
    ``percentile`` method clips activations at.

    Example:
        >>> quantize_onnx_int8("g.onnx", "g.int8.onnx", [torch.rand(1, 3, 64, 64) * 2 - 1 for _ in range(8)])
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    op_types = QUANTIZED_OPS if op_types is None else tuple(op_types)
    if not fp32_path.is_file():
        raise CheckpointError(f"{fp32_path}: no such ONNX file")
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    model = onnx.load(str(fp32_path))
    names = [i.name for i in model.graph.input]
    excluded = fp32_nodes(model, keep_fp32)
    meta = {p.key: p.value for p in model.metadata_props}
    items = list(calibration)  # a few dozen images: materialised so an empty set fails up front
    if not items:
        raise DataError("int8 calibration got no inputs: pass at least one calibration tensor (real images)")
    _check_finite_outputs(fp32_path, names, items)  # ORT's calibrator fails on NaN with "scale issue"
    reader = _Reader(names, items)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot write {out_path}: {exc.strerror or exc}") from None
    try:
        pre = workdir / "pre.onnx"
        # shape inference + graph clean-up first, as ORT recommends for static quantisation
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        tmp_out = workdir / "int8.onnx"
        # ORT's histogram calibrators print progress to stdout, which carries the CLI's JSON
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(pre),
                str(tmp_out),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                calibrate_method={
                    "minmax": CalibrationMethod.MinMax,
                    "percentile": CalibrationMethod.Percentile,
                    "entropy": CalibrationMethod.Entropy,
                }[method],
                op_types_to_quantize=list(op_types),
                nodes_to_exclude=excluded,
                extra_options={
                    "ActivationSymmetric": False,
                    "WeightSymmetric": True,
                    "CalibPercentile": float(percentile),
                },
            )
        try:
            quantised = onnx.load(str(tmp_out))
        except OSError:
            raise
        except Exception as exc:  # ORT's own writers do not report a full disk: a truncated file does
            raise StorageError(
                None, f"cannot write {out_path}: ONNX Runtime left an unreadable file (a full disk?): {exc}"
            ) from None
        del quantised.metadata_props[:]
        for key, value in {
            **meta,
            "precision": "int8",
            "calibration": f"{method}{f' {percentile}' if method == 'percentile' else ''}, "
            f"{reader.count} inputs, fp32 layers: {','.join(keep_fp32) or 'none'}",
        }.items():
            entry = quantised.metadata_props.add()
            entry.key, entry.value = key, value
        # written by utils/files.py: the umask's mode, a symlink written through, ENOSPC named
        atomic_write_bytes(out_path, quantised.SerializeToString())
    except OSError as exc:
        raise storage_error(exc, out_path) from None
    finally:
        for f in workdir.glob("*"):
            f.unlink(missing_ok=True)
        workdir.rmdir()
    return out_path


def _check_finite_outputs(fp32_path: Path, names: list[str], items: list) -> None:
    """Run the fp32 graph on the calibration inputs: NaN or inf outputs are a NonFiniteError naming it."""
    from ..metrics.finite import OUTPUT_HINT, check_finite
    from .onnx import ort_session

    session = ort_session(fp32_path)
    reader = _Reader(names, items)
    for i in range(len(items)):
        feed = reader.get_next()
        for output in session.run(None, feed or {}):
            check_finite(output, f"the outputs of {fp32_path} on calibration input {i}", OUTPUT_HINT)


def fp32_nodes(model: Any, keep: tuple[str, ...]) -> list[str]:
    """Node names of ``keep`` in an ONNX model: ``first``/``last`` (conv), an op type such as ``Add``
    (every node of it; none is fine), or node names (unknown ones are errors)."""
    convs = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    names = {n.name for n in model.graph.node}
    out = []
    for item in keep:
        if item in ("first", "last"):
            if convs:
                out.append(convs[0] if item == "first" else convs[-1])
        elif item in QUANTIZED_OPS:
            out += [n.name for n in model.graph.node if n.op_type == item]
        elif item in names:
            out.append(item)
        else:
            raise ConfigError(
                f"keep_fp32: {item!r} is neither 'first', 'last', an op type ({', '.join(QUANTIZED_OPS)}) "
                "nor a node of the graph"
            )
    return sorted(set(out))


def int8_fidelity(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    inputs: Iterable[torch.Tensor | tuple[torch.Tensor, ...]],
    *,
    threads: int = 2,
) -> dict[str, float]:
    """PSNR (dB, the project's [0, 1] convention) of the int8 graph's outputs against the fp32 graph's.

    Returns the mean and the worst image's PSNR and the number of inputs.
    """
    from ..metrics.paired import psnr
    from .onnx import ort_session, run_session

    fp32, int8 = ort_session(fp32_path, threads=threads), ort_session(int8_path, threads=threads)
    scores = []
    for item in inputs:
        tensors = (item,) if isinstance(item, torch.Tensor) else tuple(item)
        want, got = run_session(fp32, *tensors), run_session(int8, *tensors)
        scores += [min(float(v), 100.0) for v in psnr(got, want)]  # identical outputs: capped, not +inf
    if not scores:
        raise DataError("int8 fidelity needs at least one input")
    return {"psnr_mean": sum(scores) / len(scores), "psnr_min": min(scores), "count": len(scores)}


class Int8QualityError(GanCompressError):
    """The int8 graph's outputs are too far from the fp32 graph's (below the fidelity threshold)."""


def check_int8_fidelity(
    generator: Generator,
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    data_root: str | os.PathLike,
    *,
    count: int = 8,
    size: int | None = None,
    threshold: float = FIDELITY_THRESHOLD_DB,
    allow_lossy: bool = False,
    threads: int = 2,
) -> dict[str, Any]:
    """Score the int8 graph against fp32 on held-out images (the test split); print it; gate it.

    Below ``threshold`` dB (mean PSNR) the int8 file is renamed ``*.lossy.onnx`` and
    :class:`Int8QualityError` is raised, unless ``allow_lossy``.
    """
    import sys

    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    split = "test"
    try:
        inputs = calibration_inputs(generator, data_root, count=count, size=size, split=split)
    except DataError:  # a folder without a test split: score on training images (said so below)
        split = "train"
        inputs = calibration_inputs(generator, data_root, count=count, size=size, split=split)
    score = int8_fidelity(fp32_path, int8_path, inputs, threads=threads)
    side = tuple(inputs[0][0].shape[-2:])
    sizes = {"fp32_bytes": fp32_path.stat().st_size, "int8_bytes": int8_path.stat().st_size}
    passed = score["psnr_mean"] >= threshold
    print(
        f"int8 vs fp32: PSNR {score['psnr_mean']:.2f} dB mean, {score['psnr_min']:.2f} dB worst, on "
        f"{score['count']} {split}-split images at {side[0]}x{side[1]}; fp32 {sizes['fp32_bytes']:,} bytes, "
        f"int8 {sizes['int8_bytes']:,} bytes; threshold {threshold:g} dB: {'pass' if passed else 'FAIL'}",
        file=sys.stderr,
    )
    result = {
        **score,
        **sizes,
        "split": split,
        "size": list(side),
        "threshold_db": threshold,
        "passed": passed,
    }
    if not passed and not allow_lossy:
        lossy = int8_path.with_name(int8_path.name.replace(".onnx", "") + ".lossy.onnx")
        os.replace(int8_path, lossy)
        raise Int8QualityError(
            f"{int8_path}: int8 output is {score['psnr_mean']:.2f} dB PSNR from fp32, below {threshold:g} dB; "
            f"kept as {lossy}. Try --calibration-method percentile or entropy, --keep-fp32 first,last, more "
            "--calibration images, or pass --allow-lossy to accept it"
        )
    return result


def calibration_inputs(
    generator: Generator,
    data_root: str | os.PathLike,
    *,
    count: int = 32,
    size: int | None = None,
    split: str = "train",
) -> list[tuple[torch.Tensor, ...]]:
    """``count`` real inputs of ``generator`` from the dataset at ``data_root`` (batch 1 each).

    Image families take the dataset's A images; SPADE its label maps; MUNIT the A image and the style
    code its own style encoder gives the paired B image (real style codes, not random ones).
    """
    from ..data import TransformConfig, build_dataset

    if count < 1:
        raise ConfigError(f"calibration count must be at least 1, got {count}")
    if size is None:
        size = generator.default_size[0] if generator.family == "spade" else 64
    # -- validate before allocating (export/limits.py): ONNX Runtime's calibrator keeps every
    # intermediate tensor of every calibration input
    from .limits import check_inference_memory

    if size < 1:
        raise ConfigError(f"calibration size must be at least 1, got {size}")
    check_inference_memory(
        generator,
        (size, size),
        what=f"int8 calibration on {count} images of {size}x{size} (--calibration, --calibration-size)",
        count=count,
        record_all=True,
    )
    # -- end
    kind = "semantic" if generator.family == "spade" else "auto"
    dataset = build_dataset(data_root, kind, split, TransformConfig.for_eval(size))
    if len(dataset) == 0:
        raise DataError(f"{data_root}: the {split} split holds no images for calibration")
    step = max(1, len(dataset) // count)  # spread over the split rather than its first files
    out: list[tuple[torch.Tensor, ...]] = []
    for index in range(0, len(dataset), step):
        sample = dataset[index]
        if generator.family == "spade":
            out.append((sample["label"][None],))
        elif generator.family == "munit":
            with torch.no_grad():
                style = generator.encode_style(sample["B"][None])
            out.append((sample["A"][None], style))
        else:
            out.append((sample["A"][None],))
        if len(out) == count:
            break
    if len(input_names(generator.family)) != len(out[0]):  # pragma: no cover - guards the table above
        raise ConfigError(f"calibration inputs do not match the {generator.family} graph")
    return out
