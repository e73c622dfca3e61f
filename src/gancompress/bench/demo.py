"""``gancompress demo``: teacher → every compression method → export → benchmark → report, in one run.

The run directory::

    DIR/PROFILE/teacher/       the teacher's training run (its saved generator in teacher/generator)
    DIR/PROFILE/methods/NAME/  each method's run directory; the compressed generator in NAME/generator
    DIR/PROFILE/recipe.json    the demo recipe those stages were made with (PROFILE: quick or full)
    DIR/results.json        the benchmark rows (see gancompress.bench.benchmark)
    DIR/report.html         the report, with results.md and the plots beside it
    DIR/demo.json           what ran, what was reused, what is not available, and the times

Every stage is resumable: a re-run reuses a trained teacher and finished methods and redoes only
what is missing. Methods are discovered through the method registry; the demo knows the full list
of the project's methods and names those not registered (or failing) in the report instead of
inventing a row for them. The profile (steps, methods, runtimes) is a YAML recipe under
``configs/demo/``.

Example:
    >>> run_demo("runs/demo", quick=True)["report"]
    'runs/demo/report.html'
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import apply_overrides, from_dict, load_yaml, recipes_dir
from ..errors import CheckpointError, ConfigError, GanCompressError
from ..utils.files import atomic_write_json, atomic_write_text, check_writable
from ..utils.threads import BENCHMARK_THREADS
from .benchmark import BenchmarkOptions, run_benchmark

#: every method of the project, in the order the report lists them (name → what it is)
ALL_METHODS = {
    "gan-compression": "GAN Compression (distill, supernet, exhaustive search, fine-tune)",
    "fast-gan-compression": "Fast GAN Compression (supernet from the teacher, evolutionary search)",
    "gan-slimming": "GAN Slimming (sparse norm scales, distillation, optional quantisation)",
    "coronet": "CoroNetGAN (hypernetwork-driven pruning)",
    "int8": "int8 post-training quantization (ONNX Runtime static QDQ, calibrated on real images)",
}


@dataclass(frozen=True)
class DemoTeacher:
    recipe: str = "train/pix2pix_fonts.yaml"  # relative to the configs folder, or a path
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoMethodOptions:
    quick: bool = False
    ratio: float | None = None
    budget_macs: float | None = None


@dataclass(frozen=True)
class DemoBenchmark:
    runtimes: tuple[str, ...] = ("eager", "ort-fp32", "ort-int8")
    threads: int = BENCHMARK_THREADS  # latency threads; training uses the CPUs this process may use
    size: int | None = None
    warmup: int = 3
    repeats: int = 20
    extractors: tuple[str, ...] = ("domain",)
    max_images: int | None = None
    calibration: int = 32
    int8_rows: bool = True
    num_samples: int = 6


@dataclass(frozen=True)
class DemoRecipe:
    """A demo profile: which data, how to train the teacher, which methods, how to benchmark."""

    version: int = 1
    data: str = "builtin:fonts"
    teacher: DemoTeacher = field(default_factory=DemoTeacher)
    methods: tuple[str, ...] = tuple(m for m in ALL_METHODS if m != "int8")
    method: DemoMethodOptions = field(default_factory=DemoMethodOptions)
    benchmark: DemoBenchmark = field(default_factory=DemoBenchmark)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown:
            raise ConfigError(f"methods: unknown {unknown}; known: {', '.join(ALL_METHODS)}")


def configs_dir() -> Path:
    """The built-in recipes' folder (see :func:`gancompress.config.recipes_dir`)."""
    return recipes_dir()


def load_demo_recipe(
    path: str | os.PathLike | None = None, *, quick: bool = False, overrides=()
) -> DemoRecipe:
    """The demo profile at ``path`` (default: ``configs/demo/quick.yaml`` or ``full.yaml``)."""
    path = Path(path) if path else configs_dir() / "demo" / ("quick.yaml" if quick else "full.yaml")
    data = apply_overrides(load_yaml(path), list(overrides))
    return from_dict(DemoRecipe, data, where=str(path))


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _saved(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def train_demo_teacher(
    recipe: DemoRecipe, out: Path, data_root: Path, device: str = "cpu"
) -> tuple[Path, str]:
    """Train (or reuse) the teacher; returns its saved generator directory and 'trained' / 'reused'."""
    from ..training.recipe import load_train_recipe
    from ..training.teacher import train_teacher

    generator_dir = out / "generator"
    if _saved(generator_dir) and (out / "summary.json").is_file():
        return generator_dir, "reused"
    path = Path(recipe.teacher.recipe)
    if not path.is_absolute() and not path.is_file():
        path = configs_dir() / path
    overrides = [*recipe.teacher.overrides, f"data.root={data_root}"]
    train_recipe = load_train_recipe(path, overrides)
    summary = train_teacher(train_recipe, out, resume=True, device=device, progress=False)
    return Path(summary["generator"]), "trained"


def run_method(
    name: str, recipe: DemoRecipe, teacher_dir: Path, data_root: Path, out: Path, device: str = "cpu"
) -> dict[str, Any]:
    """Run one method (or reuse its finished result); returns its status entry for demo.json."""
    from ..export.saved import load_generator, save_generator
    from ..methods import MethodOptions, compress, list_methods, method_status

    if name not in list_methods():
        return {"status": "not yet available", "detail": "not registered in this installation"}
    status = method_status(name)
    if status != "available":
        return {"status": "not yet available", "detail": status}
    generator_dir = out / "generator"
    if _saved(generator_dir):
        return {"status": "reused", "generator": str(generator_dir)}
    opts = recipe.method
    options = MethodOptions(
        quick=opts.quick, ratio=opts.ratio, budget_macs=opts.budget_macs, resume=True, device=device
    )
    t0 = time.perf_counter()
    try:
        result = compress(name, load_generator(teacher_dir), data_root, out, options)
    except (GanCompressError, RuntimeError, ValueError) as exc:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "error.txt", traceback.format_exc())
        return {"status": "failed", "detail": f"{type(exc).__name__}: {exc}", "log": str(out / "error.txt")}
    save_generator(result.generator, generator_dir, extra={"method": name, "teacher": str(teacher_dir)})
    entry = {
        "status": "ran",
        "generator": str(generator_dir),
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": {k: v for k, v in result.summary.items() if isinstance(v, (int, float, str, bool))},
    }
    from .benchmark import as_verdict, recorded_gate

    gate, field = recorded_gate(result.summary)
    if gate is not None:  # the run's own verdict, for the benchmark
        entry["quality_gate"] = as_verdict(gate, f"{name}: {field}")
    return entry


def stage_dir(path: Path, recipe: DemoRecipe, data_root: Path) -> Path:
    """``path``, holding the recipe its stages were made with; a different recipe is refused, not mixed."""
    from ..config import to_dict

    # what the trained stages depend on; benchmark settings and the method list may change freely
    current = {"teacher": to_dict(recipe.teacher), "method": to_dict(recipe.method), "data": str(data_root)}
    record = path / "recipe.json"
    if record.is_file():
        try:
            previous = json.loads(record.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"{record} is not readable JSON ({exc}); delete it or choose another --out"
            ) from None
        if previous != json.loads(json.dumps(current)):
            raise ConfigError(
                f"{record}: these stages were made with another demo recipe or dataset; "
                "choose another --out or delete the folder"
            )
    else:
        atomic_write_json(record, current)
    return path


def run_demo(
    out: str | os.PathLike,
    *,
    quick: bool = False,
    recipe: DemoRecipe | None = None,
    recipe_path: str | os.PathLike | None = None,
    data: str | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run the whole demo into ``out``; returns the contents of ``demo.json`` (with ``report``).

    ``device`` trains the teacher and runs the methods; the benchmark measures on the CPU."""
    from ..methods.commands import resolve_data

    recipe = recipe or load_demo_recipe(recipe_path, quick=quick)
    out = check_writable(Path(out))
    t0 = time.perf_counter()
    data_root = resolve_data(data or recipe.data)
    profile = "quick" if quick else "full"
    # trained stages live per profile, so a full run never reuses a quick run's teacher or students
    work = stage_dir(out / profile, recipe, data_root)
    state: dict[str, Any] = {
        "profile": profile,
        "data": str(data_root),
        "stages_dir": str(work),
        "stages": {},
    }

    _log(f"teacher: training (or reusing a finished run) in {work / 'teacher'}")
    t = time.perf_counter()
    teacher_dir, how = train_demo_teacher(recipe, work / "teacher", data_root, device)
    state["stages"]["teacher"] = {
        "status": how,
        "generator": str(teacher_dir),
        "seconds": round(time.perf_counter() - t, 1),
    }
    atomic_write_json(out / "demo.json", state)

    students: dict[str, Path] = {}
    methods: dict[str, Any] = {}
    for name in ALL_METHODS:
        if name == "int8":
            methods[name] = {"status": "benchmarked", "detail": "an int8 row beside every fp32 model"}
            if not recipe.benchmark.int8_rows:
                methods[name] = {"status": "skipped", "detail": "benchmark.int8_rows is off in this profile"}
            continue
        if name not in recipe.methods:
            methods[name] = {"status": "skipped", "detail": "not in this demo profile"}
            continue
        _log(f"{name}: compressing")
        entry = run_method(name, recipe, teacher_dir, data_root, work / "methods" / name, device)
        methods[name] = entry
        _log(f"{name}: {entry['status']}" + (f" ({entry['detail']})" if "detail" in entry else ""))
        if "generator" in entry:
            students[name] = Path(entry["generator"])
        state["methods"] = methods
        atomic_write_json(out / "demo.json", state)
    state["methods"] = methods

    notes = [
        f"{name}: {entry['status']}" + (f" — {entry['detail']}" if entry.get("detail") else "")
        for name, entry in methods.items()
        if entry["status"] not in ("ran", "reused", "benchmarked")
    ]
    b = recipe.benchmark
    options = BenchmarkOptions(
        runtimes=tuple(b.runtimes),
        threads=b.threads,
        size=b.size,
        warmup=b.warmup,
        repeats=b.repeats,
        extractors=tuple(b.extractors),
        max_images=b.max_images,
        calibration=b.calibration,
        int8_rows=b.int8_rows,
        num_samples=b.num_samples,
    )
    _log(f"benchmark: teacher + {len(students)} compressed generator(s)")
    t = time.perf_counter()
    # methods that stopped with an error are failures in the report, not just notes
    failed = {
        name: entry.get("detail", "failed") for name, entry in methods.items() if entry["status"] == "failed"
    }
    results = run_benchmark(
        teacher_dir,
        {k: str(v) for k, v in students.items()},
        data_root,
        out,
        options,
        notes=notes,
        failed_models=failed,
        gates={name: entry["quality_gate"] for name, entry in methods.items() if entry.get("quality_gate")},
    )
    state["stages"]["benchmark"] = {
        "rows": len(results["rows"]),
        "seconds": round(time.perf_counter() - t, 1),
    }
    state["report"] = str(out / "report.html")
    state["results"] = str(out / "results.json")
    state["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "demo.json", state)
    return json.loads((out / "demo.json").read_text())
