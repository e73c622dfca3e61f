"""The one protocol every compression method follows.

A method takes a teacher generator and a dataset and ends in a *plain generator of the same family
at smaller widths* (plus, optionally, a quantisation recipe), so export, profiling, latency, FID and
the report never need to know which method made a model::

    result = compress("fast-gan-compression", teacher, data_root, out_dir, recipe_overrides)
    result.generator  # a plain Generator, e.g. resnet at 16_16_32_16_32_32_16_16

Methods register a runner with ``@register_method(name, status=...)``; the runner's signature is
``run(teacher, data, out_dir, options: MethodOptions) -> CompressionResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..models import Generator
from ..registry import Registry


@dataclass(frozen=True)
class MethodOptions:
    """What the command line passes to every method; the rest lives in the method's YAML recipe."""

    recipe: str | None = None  # path of a YAML recipe (default: the method's built-in recipe)
    overrides: tuple[str, ...] = ()  # --set a.b=v
    budget_macs: float | None = None  # paper-convention MACs
    budget_latency_ms: float | None = None
    ratio: float | None = None  # target MACs as a fraction of the teacher's
    rho: float | None = None  # GAN Slimming sparsity weight
    bits: int | None = None  # quantisation bit width (32 = none)
    resume: bool = True
    device: str = "cpu"
    seed: int = 0
    quick: bool = False  # shortened schedule (demo --quick, tests)
    time_budget_s: float | None = None  # --time-budget: plan the stage lengths to finish within it
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast in every training stage
    # -- run directory (utils/rundir.py) --
    resume_anyway: bool = False  # resume even though the recipe differs from the run's fingerprint
    teacher_path: str | None = None  # where the teacher was read from: --out may not be, hold or lie in it


@dataclass
class CompressionResult:
    """What a method hands back: the plain smaller generator and what it measured on the way."""

    method: str
    generator: Generator
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # e.g. {"int8_onnx": "out/model.int8.onnx"}


MethodRunner = Callable[[Generator, Path, Path, MethodOptions], CompressionResult]
METHODS: Registry[CompressionResult] = Registry("compression method")
_STATUS: dict[str, str] = {}


def register_method(name: str, status: str = "available") -> Callable[[MethodRunner], MethodRunner]:
    """Register a method runner under ``name`` (kebab-case, as on the command line)."""

    def decorator(fn: MethodRunner) -> MethodRunner:
        METHODS.register(name)(fn)
        _STATUS[name] = status
        return fn

    return decorator


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.list(pattern)


def method_status(name: str) -> str:
    return _STATUS.get(name, "available")


def compress(
    method: str,
    teacher: Generator,
    data: str | Path,
    out_dir: str | Path,
    options: MethodOptions | None = None,
) -> CompressionResult:
    """Compress ``teacher`` with ``method`` on the dataset at ``data``, writing runs under ``out_dir``."""
    if not isinstance(teacher, Generator):
        raise ConfigError(f"teacher must be a gancompress Generator, got {type(teacher).__name__}")
    runner = METHODS.get(method)
    options = options or MethodOptions()
    # -- run directory: lock, recipe fingerprint, teacher kept out of --out (utils/rundir.py) --
    from ..utils.rundir import RESUMABLE_FIELDS, RunDir, method_fingerprint

    with RunDir(
        out_dir,
        method_fingerprint(method, teacher, options),
        options.teacher_path,
        resume=options.resume,
        resume_anyway=options.resume_anyway,
        allowed_changes=RESUMABLE_FIELDS + _RERUNNABLE.get(method, ()),
    ):
        return runner(teacher, Path(data), Path(out_dir), options)


# Settings a method re-runs cheaply on a finished directory (GAN Compression searches the trained
# supernet again for a new budget), or checks itself (CoroNetGAN refuses another target, naming the
# one in prune/target.json), so the fingerprint lets them change.
_RERUNNABLE: dict[str, tuple[str, ...]] = {
    **{
        name: ("budget_macs", "budget_latency_ms", "ratio", "recipe.search.*")
        for name in ("gan-compression", "fast-gan-compression")
    },
    "coronet": ("budget_macs", "ratio"),
}
# -- end run directory --


def check_teacher_fits_data(teacher: Generator, dataset: Any, root: Path) -> None:
    """Fail before training when the teacher's input or output channels differ from the data's."""
    from ..training.state import preserved_rng
    from .gan_compression.distill import split_batch

    with preserved_rng():  # reading an item must not shift the run's random stream
        x, y = split_batch(dataset[0])
    expected = {
        "input": teacher.options.get("in_channels", teacher.options.get("label_channels")),
        "output": teacher.options.get("out_channels"),
    }
    for what, want, got in (
        ("input", expected["input"], x.shape[0]),
        ("output", expected["output"], y.shape[0]),
    ):
        if want is not None and int(want) != int(got):
            raise DataError(
                f"{root}: the teacher's {what} has {want} channels, but the dataset's {what} images have {got}"
            )


def resolve_macs_target(
    method: str,
    options: MethodOptions,
    recipe_budget_macs: float | None,
    recipe_ratio: float | None,
    teacher_macs: int,
) -> tuple[str, float, float] | None:
    """(kind, given value, target in paper MACs) from ``--budget-macs`` / ``--ratio``, else the recipe's.

    None when neither the options nor the recipe give a target. For methods that reach a MACs target
    during training (GAN Slimming, CoroNetGAN): a latency budget is refused.
    """
    if options.budget_latency_ms is not None:
        raise ConfigError(
            f"{method} reaches a MACs target: pass --budget-macs or --ratio, not --budget-latency-ms"
        )
    given = [(k, v) for k, v in (("macs", options.budget_macs), ("ratio", options.ratio)) if v is not None]
    if len(given) > 1:
        raise ConfigError("give --budget-macs or --ratio, not both")
    if not given:
        given = [(k, v) for k, v in (("macs", recipe_budget_macs), ("ratio", recipe_ratio)) if v is not None]
    if not given:
        return None
    kind, value = given[0]
    if value <= 0:
        raise ConfigError(f"the {kind} target must be positive, got {value}")
    if kind == "ratio" and value >= 1:
        raise ConfigError(f"--ratio is the fraction of the teacher's MACs to keep, in (0, 1); got {value}")
    return kind, float(value), float(value) * teacher_macs if kind == "ratio" else float(value)
