"""The time planner: time a few real steps of every training stage, then print (and with a
``--time-budget``, fit) the schedule.

Each stage's step time is measured on this machine by running the stage's own task for
``planner.probe_steps`` steps of the real data in a throw-away folder (the first step is a warm-up
and not counted). Without a budget the plan is the recipe's schedule and its estimated time; with
one, every stage is scaled by the same factor (the recipe's proportions kept, at most the recipe's
length, at least ``planner.min_steps``) so that the training steps fit the budget less
``planner.reserve`` (kept for the search, extraction, export and the gate) and less the time already
spent before planning.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ...training.callbacks import Callback
from ..base import MethodOptions
from .recipe import PlannerConfig


@dataclass
class StagePlan:
    """One training stage in the plan: the recipe's steps, the planned steps, the measured step time."""

    name: str
    recipe_steps: int
    steps: int
    step_s: float

    @property
    def eta_s(self) -> float:
        return self.steps * self.step_s


@dataclass
class Plan:
    """Every training stage's planned length, and what the plan was made from."""

    stages: dict[str, StagePlan] = field(default_factory=dict)
    budget_s: float | None = None
    spent_s: float = 0.0  # before planning (data, checks, the timed steps)
    scale: float = 1.0
    warning: str | None = None

    @property
    def eta_s(self) -> float:
        return sum(s.eta_s for s in self.stages.values())

    def steps(self, name: str) -> int | None:
        """The planned length of stage ``name`` (None: not planned, the recipe's length)."""
        stage = self.stages.get(name)
        return None if stage is None else stage.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_s": self.budget_s,
            "spent_s": self.spent_s,
            "scale": self.scale,
            "eta_s": self.eta_s,
            "warning": self.warning,
            "stages": {k: asdict(v) | {"eta_s": v.eta_s} for k, v in self.stages.items()},
        }

    def text(self) -> str:
        """The plan as printed before training: one line per stage, then the estimate."""
        lines = ["plan (step times measured on this machine):"]
        for s in self.stages.values():
            cut = f" of the recipe's {s.recipe_steps}" if s.steps != s.recipe_steps else ""
            lines.append(f"  {s.name:<15} {s.steps:>7} steps{cut} x {s.step_s:.3g} s = {_hms(s.eta_s)}")
        total = f"  training ETA {_hms(self.eta_s)} (+ {_hms(self.spent_s)} spent planning)"
        if self.budget_s is not None:
            total += f"; budget {_hms(self.budget_s)}, stages scaled by {self.scale:.3g}"
        lines.append(total)
        if self.warning:
            lines.append(f"  warning: {self.warning}")
        return "\n".join(lines)


def _hms(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class _StepClock(Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, state, logs) -> None:  # noqa: ANN001
        self.stamps.append(time.perf_counter())


def time_steps(
    task: nn.Module, dataset: Dataset, batch_size: int, options: MethodOptions, steps: int, work_dir: Path
) -> float:
    """Median seconds per training step of ``task`` (the first step not counted), in a throw-away folder.

    A non-finite loss ends the timing early and is not an error here: the stage itself meets it
    again and handles it by its ``on_nonfinite`` policy.
    """
    from ...training import NonFiniteLossError, fit
    from ...training.state import preserved_rng

    clock = _StepClock()
    work_dir.mkdir(parents=True, exist_ok=True)
    with preserved_rng(), tempfile.TemporaryDirectory(dir=work_dir, prefix=".plan-") as tmp:
        start = time.perf_counter()
        with contextlib.suppress(NonFiniteLossError):
            fit(
                task,
                dataset,
                tmp,
                batch_size=batch_size,
                max_steps=steps,
                checkpoint_every=10**9,
                log_every=10**9,
                resume=False,
                seed=options.seed,
                device=options.device,
                num_samples=0,
                callbacks=[clock],
                progress=False,
                tensorboard=False,
                precision=options.precision,
            )
    gaps = [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]
    return statistics.median(gaps) if gaps else time.perf_counter() - start


def make_plan(
    measured: list[tuple[str, int, float]], budget_s: float | None, spent_s: float, cfg: PlannerConfig
) -> Plan:
    """The plan from ``(stage, recipe steps, seconds per step)`` of every stage, in order.

    Example:
        >>> make_plan([("train", 1000, 0.5), ("finetune", 500, 0.2)], 300, 20, PlannerConfig()).steps("train")
        391
    """
    plan = Plan(budget_s=budget_s, spent_s=spent_s)
    full = sum(n * t for _, n, t in measured)
    available = None
    if budget_s is not None:
        available = budget_s * (1 - cfg.reserve) - spent_s
        plan.scale = min(1.0, max(available, 0.0) / full) if full > 0 else 1.0
    for name, n, t in measured:
        steps = max(min(n, cfg.min_steps), int(n * plan.scale))
        plan.stages[name] = StagePlan(name, n, steps, t)
    if available is not None and plan.eta_s > max(available, 0.0) * 1.001:
        plan.warning = (
            f"the budget leaves {_hms(max(available, 0.0))} for training; the shortest plan "
            f"(planner.min_steps={cfg.min_steps} per stage) needs {_hms(plan.eta_s)}"
        )
    return plan


ProbeFactory = Callable[[], nn.Module]
