"""ONNX int8: static post-training quantisation (QDQ) calibrated on real images.

``quantize_onnx_int8`` runs ``onnxruntime.quantization.quantize_static`` on an fp32 graph from
:func:`gancompress.export.onnx.export_onnx`: per-channel symmetric int8 weights, uint8 activations
with ranges measured on calibration inputs, in the QDQ format (QuantizeLinear/DequantizeLinear pairs
that ORT fuses into integer kernels where it has them). Any iterable of input tensors (or tuples of
tensors, for MUNIT's image + style) calibrates; :func:`calibration_inputs` draws them from a dataset.

Why the defaults: generator activations are not centred (ReLU outputs, Tanh-bound images), so
asymmetric uint8 keeps their resolution; per-channel weights matter for narrow compressed layers
whose channels differ in scale; InstanceNorm is left in fp32 (ORT has no int8 kernel for it) so the
statistics that define the style are computed exactly.

Example:
    >>> fp32 = export_onnx(g, "g.onnx")
    >>> int8 = quantize_onnx_int8(fp32, "g.int8.onnx", calibration_inputs(g, "datasets/fonts"))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError, StorageError
from ..models import Generator
from ..utils.files import atomic_write_bytes, storage_error
from .rewrite import input_names

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
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
    method: str = "minmax",
    per_channel: bool = True,
    op_types: tuple[str, ...] | None = None,
) -> Path:
    """Quantise an fp32 ONNX generator to int8 (QDQ), calibrating on ``calibration``; written atomically.

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
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
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
            "calibration": f"{method}, {reader.count} inputs",
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
