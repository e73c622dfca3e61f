"""The compression target: ``--budget-macs`` / ``--budget-latency-ms`` / ``--ratio``, else the recipe's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ..base import MethodOptions

FLAGS = {"macs": "--budget-macs", "latency_ms": "--budget-latency-ms", "ratio": "--ratio"}


@dataclass(frozen=True)
class Target:
    """What the run aims at: the kind given, its value, and (for MACs and ratio) the paper MACs."""

    kind: str | None = None  # macs | ratio | latency_ms | None (the method's own criterion decides)
    value: float | None = None
    macs: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"given": self.kind, "value": self.value, "macs": self.macs}


def resolve_target(
    method: str,
    kinds: tuple[str, ...],
    options: MethodOptions,
    recipe_targets: dict[str, float | None],
    teacher_macs: int,
    required: bool = False,
) -> Target:
    """The run's :class:`Target`: the command line's, else the recipe's (``recipe_targets`` by kind).

    ``kinds`` are the kinds the method can reach; a latency budget for a method that reaches a MACs
    target during training is refused by name.
    """
    given = [
        (k, v)
        for k, v in (
            ("macs", options.budget_macs),
            ("latency_ms", options.budget_latency_ms),
            ("ratio", options.ratio),
        )
        if v is not None
    ]
    refused = [k for k, _ in given if k not in kinds]
    if refused:
        flags = " or ".join(FLAGS[k] for k in kinds)
        raise ConfigError(f"{method} reaches a MACs target: pass {flags}, not {FLAGS[refused[0]]}")
    if len(given) > 1:
        raise ConfigError(f"give one target, not {' and '.join(FLAGS[k] for k, _ in given)}")
    if not given:
        given = [(k, v) for k, v in recipe_targets.items() if v is not None][:1]
    if not given:
        if required:
            raise ConfigError(
                f"no target: pass {' or '.join(FLAGS[k] for k in kinds)}, or set one in the recipe"
            )
        return Target()
    kind, value = given[0]
    if value <= 0:
        raise ConfigError(f"the {kind} target must be positive, got {value}")
    if kind == "ratio" and value >= 1:
        raise ConfigError(f"--ratio is the fraction of the teacher's MACs to keep, in (0, 1); got {value}")
    macs = None if kind == "latency_ms" else float(value) * teacher_macs if kind == "ratio" else float(value)
    return Target(kind, float(value), macs)
