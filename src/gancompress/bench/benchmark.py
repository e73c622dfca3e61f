"""The side-by-side benchmark: a teacher and any number of compressed generators, measured alike.

For every saved generator it records parameters and MACs (paper and true conventions), the size of
its files, latency in each requested runtime (:mod:`gancompress.bench.latency`) and image quality on
the dataset's test split (:func:`gancompress.metrics.evaluate.evaluate_generator`: PSNR/SSIM/L1 for
paired data, FID/KID per available feature extractor). Each fp32 generator also gets an int8 row:
its ONNX graph quantised after training (static QDQ calibrated on real training images), scored and
timed through ONNX Runtime. The rows go to ``results.json``; :mod:`gancompress.bench.report` turns
them into a markdown table, plots and an HTML page.

Every row carries a quality-gate verdict (``row["quality_gate"]``: ``passed``, ``reasons``, ``scores``,
``source``): a student's own verdict from the ``summary.json`` its compress run wrote (beside or
above the saved generator), otherwise :func:`minimal_quality_gate` on held-out test inputs. The report
shows a failed model as failed, never as a result. ``results["floor"]`` is the per-inference floor of
each fp32 runtime: the teacher's family at width 1 in every layer (same depth and operators, almost
no MACs), timed like the models, so a small speed-up can be read against it.

Example:
    >>> rows = run_benchmark({"teacher": "runs/teacher"}, {"fgc": "runs/fgc/generator"},
    ...                      "datasets/fonts", "runs/bench", runtimes=("eager", "ort-fp32", "ort-int8"))
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..arch import ArchSpec
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
    gate_images: int = 16  # held-out inputs the benchmark's own quality gate scores
    floor: bool = True  # time the width-1 network of the teacher's family in each fp32 runtime

    def __post_init__(self) -> None:
        unknown = [r for r in self.runtimes if r not in RUNTIMES]
        if unknown:
            raise ConfigError(f"runtimes: unknown {unknown}; known: {', '.join(RUNTIMES)}")
        if self.threads < 1 or self.repeats < 1 or self.warmup < 0 or self.calibration < 1:
            raise ConfigError("threads, repeats and calibration must be >= 1 and warmup >= 0")
        if self.gate_images < 1:
            raise ConfigError(f"gate_images must be >= 1, got {self.gate_images}")


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
    extractors = {
        label: {
            k: entry.get(k) for k in ("extractor", "comparable_with_published_fid", "num_real", "num_fake")
        }
        for label, entry in (result.get("extractors") or {}).items()
    }
    info = {"skipped": result.get("skipped", {}), "num_images": result.get("num_images")}
    return _quality(result), {**info, "extractors": extractors}


# below this pixel standard deviation (on the [-1, 1] scale, about 1.3 grey levels of 255) an output
# counts as constant: GAN Slimming's collapsed students write one flat grey image
CONSTANT_STD = 0.01
MINIMAL_GATE = "the benchmark's minimal check"  # the source a row names for minimal_quality_gate's verdict


def _output(model, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(inputs)
    return (out[0] if isinstance(out, (tuple, list)) else out).detach().float().cpu()


def _mean_psnr(fake: torch.Tensor, real: torch.Tensor) -> float | None:
    from ..metrics.paired import psnr

    value = float(psnr(fake, real).mean())
    return round(value, 3) if math.isfinite(value) else None  # identical images: no finite PSNR


def minimal_quality_gate(
    student, teacher, inputs: torch.Tensor, targets: torch.Tensor | None = None
) -> dict[str, Any]:
    """The benchmark's own verdict on a model without one: fails a non-finite or constant output,
    or (when input and output have the same channels) an output further from the teacher's than
    the input itself is. ``student`` and ``teacher`` are callables on a batch of [-1, 1] images.

    It is a stand-in with the shared gate's signature and result keys (``passed``, ``reasons``,
    ``scores``), kept in this one function so that the shared gate can replace it.

    Example:
        >>> minimal_quality_gate(student, teacher, test_inputs)["passed"]
        True
    """
    fake = _output(student, inputs)
    reasons: list[str] = []
    scores: dict[str, float | None] = {}
    if not torch.isfinite(fake).all():
        reasons.append("non-finite output (NaN or inf)")
        return {"passed": False, "reasons": reasons, "scores": scores, "images": int(inputs.shape[0])}
    fake = fake.clamp(-1, 1)
    pixel_std = float(fake.flatten(1).std(1).mean())
    scores["output_std"] = round(pixel_std, 5)
    if pixel_std < CONSTANT_STD:
        reasons.append(f"constant output (pixel standard deviation {pixel_std:.4f} < {CONSTANT_STD})")
    elif inputs.shape[0] > 1 and float(fake.std(0).mean()) < CONSTANT_STD / 10:
        reasons.append("the same output for every input")
    if teacher is not student:
        reference = _output(teacher, inputs).clamp(-1, 1)
        scores["psnr_vs_teacher"] = _mean_psnr(fake, reference)
        if inputs.shape == fake.shape:
            scores["psnr_copy_vs_teacher"] = _mean_psnr(inputs, reference)
            ours, copy = scores["psnr_vs_teacher"], scores["psnr_copy_vs_teacher"]
            if ours is not None and copy is not None and ours < copy:
                reasons.append(
                    f"further from the teacher than copying the input ({ours:.2f} dB < {copy:.2f} dB PSNR)"
                )
    if targets is not None and targets.shape == fake.shape:
        scores["psnr_vs_target"] = _mean_psnr(fake, targets)
        if inputs.shape == targets.shape:
            scores["psnr_copy_vs_target"] = _mean_psnr(inputs, targets)
    return {"passed": not reasons, "reasons": reasons, "scores": scores, "images": int(inputs.shape[0])}


def as_verdict(gate: Any, where: str = "quality_gate") -> dict[str, Any]:
    """A quality-gate result as the plain dict a row holds: a dict, or an object with ``to_dict()``
    or dataclass fields, with a boolean ``passed`` and a list of ``reasons``."""
    import dataclasses

    if hasattr(gate, "to_dict"):
        gate = gate.to_dict()
    elif dataclasses.is_dataclass(gate) and not isinstance(gate, type):
        gate = dataclasses.asdict(gate)
    if not isinstance(gate, dict) or not isinstance(gate.get("passed"), bool):
        raise ConfigError(f"{where} must be an object with a boolean 'passed'")
    reasons = gate.get("reasons") or []
    return {**gate, "reasons": [reasons] if isinstance(reasons, str) else [str(r) for r in reasons]}


def summary_gate(path: str | os.PathLike) -> dict[str, Any] | None:
    """The quality-gate verdict a compress run wrote into ``summary.json`` beside or above the saved
    generator at ``path`` (``summary["quality_gate"]``), or None when there is none."""
    path = Path(path)
    for candidate in (path / "summary.json", path.parent / "summary.json"):
        if not candidate.is_file():
            continue
        try:
            summary = json.loads(candidate.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{candidate}: not readable JSON ({exc})") from None
        gate, field = recorded_gate(summary)
        if gate is None:
            continue
        return {**as_verdict(gate, f"{candidate}: {field}"), "source": str(candidate)}
    return None


def recorded_gate(summary: Any) -> tuple[Any, str]:
    """(verdict, its field) in a run's summary: the runner's ``gate`` (top level or under
    ``method_summary``, as ``compress`` writes it) or a ``quality_gate``; (None, "") when there is none."""
    if not isinstance(summary, dict):
        return None, ""
    for field in ("quality_gate", "gate"):
        if summary.get(field) is not None:
            return summary[field], field
    inner = summary.get("method_summary")
    if isinstance(inner, dict) and inner.get("gate") is not None:
        return inner["gate"], "method_summary.gate"
    return None, ""


def _gate(verdict: dict[str, Any], source: str) -> dict[str, Any]:
    return {**verdict, "source": verdict.get("source", source)}


def floor_generator(generator):
    """The per-inference floor network of ``generator``: its family and options at width 1 in every
    layer group, so the same depth and operators with almost no MACs (random weights: only timed)."""
    spec = ArchSpec(generator.family, (1,) * len(generator.arch.widths))
    torch.manual_seed(0)
    return type(generator).from_options(spec, generator.options).eval()


def measure_floor(teacher, opts: BenchmarkOptions, size: int, workdir: Path) -> dict[str, Any] | None:
    """Latency of :func:`floor_generator` of the teacher in each fp32 runtime of ``opts``."""
    from ..metrics.profile import profile_generator

    runtimes = [r for r in opts.runtimes if r not in INT8_RUNTIMES]
    if not opts.floor or not runtimes:
        return None
    try:
        floor = floor_generator(teacher)
        hw = (size, size) if floor.family != "spade" else None
        prof = profile_generator(floor, hw)
    except (GanCompressError, RuntimeError, ValueError) as exc:  # a family that has no width-1 form
        return {"error": f"{type(exc).__name__}: {exc}", "latency_ms": {}, "latency": []}
    workdir.mkdir(parents=True, exist_ok=True)
    latency = measure_generator(
        floor,
        name="floor",
        runtimes=runtimes,
        size=hw,
        threads=opts.threads,
        warmup=opts.warmup,
        repeats=opts.repeats,
        workdir=workdir,
    )
    return {
        "what": f"the {floor.family} family at width 1 in every layer (same depth and operators, random weights)",
        "arch": str(floor.arch),
        "macs_paper": prof.macs_paper,
        "macs_true": prof.macs_true,
        "params": prof.params,
        "latency_ms": {r["runtime"]: r["median_ms"] for r in latency},
        "latency": latency,
    }


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


def load_saved(path: str | os.PathLike, overrides: Any = None):
    """A saved generator directory (or an official ``.pth``) and the method recorded with it.

    ``overrides``: :class:`gancompress.export.resolve.Overrides` for a ``.pth`` (``--norm``, …).
    """
    from ..export.resolve import load_generator_arg
    from ..export.saved import read_config

    path = Path(path)
    generator = load_generator_arg(path, overrides)
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
    failed_models: dict[str, str] | None = None,
    gates: dict[str, Any] | None = None,
    teacher_overrides: Any = None,
) -> dict[str, Any]:
    """Measure the teacher and every student; write ``results.json`` and the report files under ``out``.

    Returns the results object: ``{"version", "environment", "data", "options", "rows", "floor",
    "failed_models", "notes"}``. ``rows`` is a list with, per model: name, method, family, arch,
    macs_paper, macs_true, params, size_bytes, latency_ms (runtime → median ms, or None where it
    failed), latency (full latency rows), quality (metric → value), precision and quality_gate
    (``passed``, ``reasons``, ``scores``, ``source``). ``failed_models`` (name → reason) names models
    that produced nothing to measure (a method that stopped with an error); the report lists them
    among the failures. ``gates`` (student name → quality-gate result) gives verdicts in hand, ahead
    of those found in ``summary.json`` files. ``teacher_overrides`` (an ``export.resolve.Overrides``)
    fixes what a ``.pth`` teacher's file cannot tell.
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
    gate_x, gate_y = sample_inputs(root, kind, opts.gate_images, image_size)
    teacher_model = None
    samples: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    floor = None
    start = time.perf_counter()
    models = {teacher_name: Path(teacher), **{k: Path(v) for k, v in students.items()}}
    for name, path in models.items():
        _log(f"{name}: {path}")
        generator, method = load_saved(path, teacher_overrides if name == teacher_name else None)
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
        if name == teacher_name:
            teacher_model = generator
            floor = measure_floor(generator, opts, lat_size, out / "models" / "_floor")
        recorded = None
        if name != teacher_name:
            given = (gates or {}).get(name)
            recorded = (
                _gate(as_verdict(given, f"gates[{name!r}]"), "given to run_benchmark")
                if given
                else summary_gate(path)
            )
        gate = recorded or _gate(minimal_quality_gate(generator, teacher_model, gate_x, gate_y), MINIMAL_GATE)
        _log(
            f"{name}: quality gate {'passed' if gate['passed'] else 'FAILED: ' + '; '.join(gate['reasons'])}"
        )
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
                "quality_gate": gate,
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
            if gate["passed"]:
                gate8 = _gate(minimal_quality_gate(ort8, teacher_model, gate_x, gate_y), MINIMAL_GATE)
            else:
                gate8 = {
                    "passed": False,
                    "reasons": [f"its fp32 model {name} failed"],
                    "source": "its fp32 row",
                }
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
                    "quality_gate": gate8,
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
        "floor": floor,
        "failed_models": dict(failed_models or {}),
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
