"""The side-by-side benchmark: a teacher and any number of compressed generators, measured alike.

For every saved generator it records parameters and MACs (paper and true conventions), the size of
its files, latency in each requested runtime (:mod:`gancompress.bench.latency`) and image quality on
the dataset's test split (:func:`gancompress.metrics.evaluate.evaluate_generator`: PSNR/SSIM/L1 for
paired data, FID/KID per available feature extractor). Each fp32 generator also gets an int8 row:
its ONNX graph quantised after training (static QDQ calibrated on real training images), scored and
timed through ONNX Runtime. The rows go to ``results.json``; :mod:`gancompress.bench.report` turns
them into a markdown table, plots and an HTML page.

Example:
    >>> rows = run_benchmark({"teacher": "runs/teacher"}, {"fgc": "runs/fgc/generator"},
    ...                      "datasets/fonts", "runs/bench", runtimes=("eager", "ort-fp32", "ort-int8"))
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, GanCompressError
from ..utils.files import atomic_write_json, check_writable
from .latency import (
    DEFAULT_THREADS,
    INT8_RUNTIMES,
    RUNTIMES,
    device_info,
    environment_line,
    load_average,
    measure_generator,
)

RESULTS_NAME = "results.json"
RESULTS_VERSION = 1


@dataclass(frozen=True)
class BenchmarkOptions:
    """How much to measure: the runtimes, the timing protocol and the evaluation set."""

    runtimes: tuple[str, ...] = ("eager", "ort-fp32", "ort-int8")
    threads: int = DEFAULT_THREADS  # 1: on a shared machine more threads mostly measure other jobs
    size: int | None = None  # latency input side; default: the dataset's image size
    device: str = "cpu"  # where latency is measured (runtimes that do not run there give skipped rows)
    warmup: int = 3
    repeats: int = 20
    extractors: tuple[str, ...] = ("domain",)
    max_images: int | None = None  # evaluation images (None: the whole test split)
    calibration: int = 32  # real images calibrating int8
    int8_rows: bool = True
    num_samples: int = 6

    def __post_init__(self) -> None:
        unknown = [r for r in self.runtimes if r not in RUNTIMES]
        if unknown:
            raise ConfigError(f"runtimes: unknown {unknown}; known: {', '.join(RUNTIMES)}")
        if self.threads < 1 or self.repeats < 1 or self.warmup < 0 or self.calibration < 1:
            raise ConfigError("threads, repeats and calibration must be >= 1 and warmup >= 0")


def _log(msg: str) -> None:
    print(f"[benchmark] {msg}", file=sys.stderr, flush=True)


def data_kind(root: Path) -> str:
    """The evaluation kind (paired / unpaired / semantic) of a dataset folder."""
    from ..data import detect_kind

    kind = detect_kind(root, "test")
    return {"aligned": "paired", "paired_folders": "paired"}.get(kind, kind)


def data_size(root: Path) -> int:
    from ..data import read_metadata

    info = read_metadata(root) or {}
    return int(info.get("size") or 256)


def _quality(result: dict[str, Any]) -> dict[str, float]:
    """The flat ``{metric: value}`` object of a row from :func:`evaluate_generator`'s result."""
    quality: dict[str, float] = {}
    for key, value in (result.get("paired") or {}).items():
        quality[key] = value
    for label, entry in (result.get("extractors") or {}).items():
        quality[f"fid_{label}"] = entry["fid"]
        quality[f"kid_{label}"] = entry["kid"]
        if "content_accuracy" in entry:
            quality[f"content_accuracy_{label}"] = entry["content_accuracy"]
    if "segmentation" in result:
        quality["miou"] = result["segmentation"]["miou"]
    return quality


def _evaluate(model: torch.nn.Module, root: Path, kind: str, opts: BenchmarkOptions) -> tuple[dict, dict]:
    import warnings

    from ..metrics.evaluate import evaluate_generator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # skipped extractors are recorded in the row
        result = evaluate_generator(
            model,
            root,
            kind=kind,
            extractors=opts.extractors,
            max_images=opts.max_images,
            batch_size=8,
        )
    return _quality(result), {"skipped": result.get("skipped", {}), "num_images": result.get("num_images")}


def sample_inputs(root: Path, kind: str, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first ``count`` test inputs (and targets, where the data has them) at the eval transform."""
    from ..data import TransformConfig, build_dataset

    options = {"serial": True} if kind == "unpaired" else {}
    ds = build_dataset(root, "auto", "test", TransformConfig.for_eval(size), **options)
    if len(ds) == 0:
        raise ConfigError(f"{root}: the test split holds no images")
    in_key, real_key = ("label", "image") if kind == "semantic" else ("A", "B")
    items = [ds[i] for i in range(min(count, len(ds)))]
    inputs = torch.stack([it[in_key] for it in items])
    targets = torch.stack([it[real_key] for it in items]) if kind != "unpaired" else None
    return inputs, targets


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def load_saved(path: str | os.PathLike):
    """A saved generator directory (or an official ``.pth``) and the method recorded with it."""
    from ..export.saved import read_config
    from ..methods.commands import load_teacher

    path = Path(path)
    generator = load_teacher(path)
    method = None
    if path.is_dir():
        meta = read_config(path).get("meta") or {}
        method = meta.get("method")
    return generator, method


def run_benchmark(
    teacher: str | os.PathLike,
    students: dict[str, str | os.PathLike],
    data: str | os.PathLike,
    out: str | os.PathLike,
    options: BenchmarkOptions | None = None,
    *,
    notes: Sequence[str] = (),
    teacher_name: str = "teacher",
) -> dict[str, Any]:
    """Measure the teacher and every student; write ``results.json`` and the report files under ``out``.

    Returns the results object: ``{"version", "environment", "data", "options", "rows", "notes"}``.
    ``rows`` is a list with, per model: name, method, family, arch, macs_paper, macs_true, params,
    size_bytes, latency_ms (runtime → median ms, or None where it failed), latency (full latency rows),
    quality (metric → value) and precision.
    """
    from ..export.int8 import calibration_inputs, quantize_onnx_int8
    from ..export.onnx import OrtGenerator, export_onnx
    from ..export.saved import WEIGHTS_NAME
    from ..metrics.profile import profile_generator
    from .report import write_report

    opts = options or BenchmarkOptions()
    out = check_writable(Path(out))
    root = Path(data)
    if teacher_name in students:
        raise ConfigError(f"student name {teacher_name!r} is taken by the teacher")
    kind = data_kind(root)
    image_size = data_size(root)
    lat_size = opts.size or image_size
    sample_x, sample_y = sample_inputs(root, kind, opts.num_samples, image_size)
    samples: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    models = {teacher_name: Path(teacher), **{k: Path(v) for k, v in students.items()}}
    for name, path in models.items():
        _log(f"{name}: {path}")
        generator, method = load_saved(path)
        generator.eval()
        method = "teacher" if name == teacher_name else (method or "unknown")
        model_dir = out / "models" / _safe(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        prof = profile_generator(generator, (lat_size, lat_size) if generator.family != "spade" else None)
        fp32_path, int8_path = model_dir / "model.onnx", model_dir / "model.int8.onnx"
        needs_onnx = opts.int8_rows or any(r.startswith(("ort", "openvino")) for r in opts.runtimes)
        # int8 runtimes run in the int8 row (ONNX Runtime's unless OpenVINO's is asked for too)
        int8_runtimes = tuple(r for r in opts.runtimes if r in INT8_RUNTIMES) or ("ort-int8",)
        if needs_onnx:
            export_onnx(generator, fp32_path)
        if opts.int8_rows or set(INT8_RUNTIMES) & set(opts.runtimes):
            calib = calibration_inputs(generator, root, count=opts.calibration, size=image_size)
            quantize_onnx_int8(fp32_path, int8_path, calib)
        base = {
            "family": generator.family,
            "arch": str(generator.arch),
            "path": str(path),
            "macs_paper": prof.macs_paper,
            "macs_true": prof.macs_true,
            "params": prof.params,
            "latency_input": [1, *prof.input_shape[1:]],
        }
        fp32_torch = [r for r in opts.runtimes if r not in INT8_RUNTIMES]
        latency = measure_generator(
            generator,
            name=name,
            runtimes=fp32_torch,
            size=(lat_size, lat_size) if generator.family != "spade" else None,
            threads=opts.threads,
            warmup=opts.warmup,
            repeats=opts.repeats,
            device=opts.device,
            onnx_fp32=fp32_path if needs_onnx else None,
            workdir=model_dir,
        )
        quality, eval_info = _evaluate(generator, root, kind, opts)
        weights = path / WEIGHTS_NAME if path.is_dir() else path
        rows.append(
            {
                "name": name,
                "method": method,
                **base,
                "precision": "fp32",
                "size_bytes": _file_size(weights),
                "files": {"weights": str(weights), "onnx_fp32": str(fp32_path) if needs_onnx else None},
                "latency_ms": {r["runtime"]: r["median_ms"] for r in latency},
                "latency": latency,
                "quality": quality,
                "evaluation": eval_info,
            }
        )
        with torch.no_grad():
            samples[name] = generator(sample_x).clamp(-1, 1)
        if opts.int8_rows:
            int8_name = f"{name} int8"
            lat8 = measure_generator(
                generator,
                name=int8_name,
                runtimes=int8_runtimes,
                size=(lat_size, lat_size) if generator.family != "spade" else None,
                threads=opts.threads,
                warmup=opts.warmup,
                repeats=opts.repeats,
                onnx_fp32=fp32_path,
                onnx_int8=int8_path,
                workdir=model_dir,
            )
            ort8 = OrtGenerator(int8_path, threads=opts.threads)
            q8, info8 = _evaluate(ort8, root, kind, opts)
            rows.append(
                {
                    "name": int8_name,
                    "method": "int8-ptq" if method == "teacher" else f"{method} + int8-ptq",
                    **base,
                    "precision": "int8",
                    "size_bytes": _file_size(int8_path),
                    "files": {"onnx_int8": str(int8_path)},
                    "latency_ms": {r["runtime"]: r["median_ms"] for r in lat8},
                    "latency": lat8,
                    "quality": q8,
                    "evaluation": info8,
                }
            )
            samples[int8_name] = ort8(sample_x).clamp(-1, 1)
        _log(f"{name}: done ({time.perf_counter() - start:.0f} s so far)")
    results = {
        "version": RESULTS_VERSION,
        "environment": {**device_info(opts.device), "threads": opts.threads, "load_avg_end": load_average()},
        "environment_line": environment_line(opts.threads, opts.device),
        "data": {"root": str(root), "kind": kind, "image_size": image_size, "latency_size": lat_size},
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(opts).items()},
        "rows": rows,
        "notes": list(notes),
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_json(out / RESULTS_NAME, results)
    try:
        write_report(results, out, samples=samples, sample_inputs=sample_x, sample_targets=sample_y)
    except GanCompressError:
        raise
    except OSError as exc:
        from ..errors import StorageError

        raise StorageError(exc.errno, f"cannot write the report under {out}: {exc.strerror or exc}") from None
    return results


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
