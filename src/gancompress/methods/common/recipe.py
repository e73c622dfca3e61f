"""The recipe blocks every compression method shares: data, discriminator, a training stage, the
quality gate and the time planner; plus loading a method's recipe.

A method's recipe class is a frozen dataclass with ``version``, ``task``, ``seed``, ``data``,
``discriminator``, ``gate`` and ``planner`` fields of these types and an ``image_size`` property;
the rest is the method's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from ...config import apply_overrides, from_dict, load_yaml
from ...errors import ConfigError
from ...recipe_blocks import DiscriminatorConfig as BaseDiscriminatorConfig
from ...recipe_blocks import ImageDataConfig, check_version, non_negative, positive

T = TypeVar("T")

__all__ = [
    "DataConfig",
    "DiscriminatorConfig",
    "GateConfig",
    "PlannerConfig",
    "StageConfig",
    "check_version",
    "load_method_recipe",
    "non_negative",
    "positive",
]


@dataclass(frozen=True)
class DataConfig(ImageDataConfig):
    """The dataset as a method reads it: the training crop, the batch, and the held-out slice."""

    batch_size: int = 1
    num_workers: int = 0
    holdout: int = 64  # training images kept out of training: search candidates and the quality gate
    # A folder of extra generator inputs with no target (``gancompress data prepare fonts-unlabelled``):
    # each training batch also distils from the teacher on as many of them (its output as target).
    unlabelled: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("data.batch_size", self.batch_size)
        non_negative("data.holdout", self.holdout)
        non_negative("data.num_workers", self.num_workers)


@dataclass(frozen=True)
class DiscriminatorConfig(BaseDiscriminatorConfig):
    """The student's discriminator; ``init_from`` is the teacher's discriminator (safetensors)."""

    conditional: bool = True  # sees input and output side by side (pix2pix, GauGAN), else output only
    init_from: str | None = None


@dataclass(frozen=True)
class StageConfig:
    """One training stage: epochs at constant LR, then epochs of linear decay, and the optimisers."""

    epochs: int = 0
    decay_epochs: int = 0
    max_steps: int | None = None  # caps the stage (quick runs); None: the epochs decide
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    checkpoint_every: int = 500
    log_every: int = 50
    on_nonfinite: Literal["stop", "rollback"] = "stop"  # rollback: last checkpoint, learning rates halved

    def __post_init__(self) -> None:
        non_negative("epochs", self.epochs)
        non_negative("decay_epochs", self.decay_epochs)
        if self.max_steps is not None:
            non_negative("max_steps", self.max_steps)
        positive("lr_g", self.lr_g)
        positive("lr_d", self.lr_d)
        positive("checkpoint_every", self.checkpoint_every)
        positive("log_every", self.log_every)

    @property
    def enabled(self) -> bool:
        return self.epochs + self.decay_epochs > 0 and self.max_steps != 0


@dataclass(frozen=True)
class GateConfig:
    """The quality gate at the end of every compress run (see :func:`gancompress.metrics.gate.quality_gate`).

    ``min_std``: the smallest mean per-image standard deviation (images in [-1, 1]) a working
    generator gives; ``min_spread``: the smallest mean per-pixel standard deviation across inputs
    (below it the student gives the same image for every input); ``copy_margin_db``: how many dB the
    student must beat copying the input by, against the teacher (image-to-image tasks only).
    """

    enabled: bool = True
    min_std: float = 0.02
    min_spread: float = 0.01
    copy_margin_db: float = 0.0
    max_images: int = 64

    def __post_init__(self) -> None:
        non_negative("gate.min_std", self.min_std)
        non_negative("gate.min_spread", self.min_spread)
        positive("gate.max_images", self.max_images)


@dataclass(frozen=True)
class PlannerConfig:
    """The time planner: timed steps per training stage, and how a ``--time-budget`` is shared.

    ``reserve`` is the fraction of the budget kept for what is not a training step (search,
    extraction, export, the gate); a planned stage keeps at least ``min_steps`` steps (or the
    recipe's, when fewer).
    """

    enabled: bool = True  # False: no timed steps and no estimate (refused with --time-budget)
    probe_steps: int = 3
    reserve: float = 0.15
    min_steps: int = 10

    def __post_init__(self) -> None:
        if self.probe_steps < 2:
            raise ConfigError(f"planner.probe_steps must be at least 2, got {self.probe_steps}")
        if not 0 <= self.reserve < 1:
            raise ConfigError(f"planner.reserve must be in [0, 1), got {self.reserve}")
        positive("planner.min_steps", self.min_steps)


def load_method_recipe(cls: type[T], path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> T:
    """Read a method's recipe YAML (with ``a.b=v`` overrides) into the validated dataclass ``cls``.

    Example:
        >>> r = load_method_recipe(CoronetRecipe, "configs/methods/coronet/fonts.yaml", ["prune.ratio=0.1"])
    """
    data = apply_overrides(load_yaml(path), list(overrides))
    return from_dict(cls, data, str(path))
