"""The one protocol every compression method follows.

A method takes a teacher generator and a dataset and ends in a *plain generator of the same family
at smaller widths* (plus, optionally, a quantisation recipe), so export, profiling, latency, FID and
the report never need to know which method made a model::

    result = compress("fast-gan-compression", teacher, data_root, out_dir, recipe_overrides)
    result.generator  # a plain Generator, e.g. resnet at 16_16_32_16_32_32_16_16

Every built-in method is a :class:`~gancompress.methods.common.method.Method` registered with
``@common.method.register``, run by the one shared runner (:mod:`gancompress.methods.common.runner`);
underneath, ``@register_method(name, status=...)`` registers any callable
``run(teacher, data, out_dir, options: MethodOptions) -> CompressionResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
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
    teacher: Generator | None,
    data: str | Path,
    out_dir: str | Path,
    options: MethodOptions | None = None,
) -> CompressionResult:
    """Compress ``teacher`` with ``method`` on the dataset at ``data``, writing runs under ``out_dir``.

    ``teacher`` None: a method that trains from scratch (``coronet``) starts from its recipe's generator.
    """
    if teacher is None:
        from .common.method import method_classes

        METHODS.get(method)  # an unknown name fails first, listing the known ones
        cls = method_classes().get(method)
        if cls is None or not cls.teacher_free:
            free = sorted(n for n, c in method_classes().items() if c.teacher_free)
            raise ConfigError(
                f"{method} compresses a trained teacher: pass --teacher (a saved generator directory or an "
                f"official latest_net_G.pth); only {', '.join(free) or 'no method'} can train from scratch"
            )
    elif not isinstance(teacher, Generator):
        raise ConfigError(f"teacher must be a gancompress Generator, got {type(teacher).__name__}")
    runner = METHODS.get(method)
    options = options or MethodOptions()
    # -- run directory: lock, recipe fingerprint, teacher kept out of --out (utils/rundir.py) --
    from ..utils.files import check_writable
    from ..utils.rundir import RESUMABLE_FIELDS, RunDir, method_fingerprint

    check_writable(Path(out_dir))  # a read-only or unusable --out fails now, not after training
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
