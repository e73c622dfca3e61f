"""The CAT recipe: frozen dataclasses read from the YAML files under ``configs/methods/cat/``.

Data, discriminator, stage, gate and planner settings are the shared blocks of
:mod:`gancompress.methods.common.recipe`; the loss, the inception teacher and the pruning are CAT's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...config import CONFIG_VERSION
from ...errors import ConfigError
from ...recipe_blocks import GanLossConfig
from ..common.recipe import (
    DataConfig,
    DiscriminatorConfig,
    GateConfig,
    PlannerConfig,
    StageConfig,
    check_version,
    load_method_recipe,
    non_negative,
    positive,
)

RECON_KINDS = ("l1", "l2", "smooth_l1")


@dataclass(frozen=True)
class CatLoss(GanLossConfig):
    """``gan`` × GAN loss + ``recon`` × reconstruction + ``distill`` × Σ (−KA) over the feature points.

    The reconstruction target is the ground truth on paired data and the teacher's output on unpaired
    data (the official ``backward_G``); D sees real pairs / real output images against the student's.
    Official defaults: hinge, recon 100 (``--lambda_recon``), distill 1 (``--lambda_distill``).
    """

    gan_mode: Literal["hinge", "lsgan", "vanilla"] = "hinge"
    recon: float = 100.0
    recon_kind: Literal["l1", "l2", "smooth_l1"] = "l1"
    distill: float = 1.0
    feature_points: tuple[str, ...] = ("trunk_in", "block3", "block6", "block9")

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("loss.recon", self.recon)
        non_negative("loss.distill", self.distill)
        if self.recon_kind not in RECON_KINDS:
            raise ConfigError(f"loss.recon_kind must be one of {RECON_KINDS}, got {self.recon_kind!r}")


@dataclass(frozen=True)
class InceptionTeacherConfig:
    """CAT's teacher: the inception-residual family at full width.

    ``source``: ``auto`` (the given teacher when it is already of the inception family, else train
    one), ``given`` (the given teacher must be an inception generator) or ``train``. A trained
    inception teacher learns from the data with the task's objective (``loss``) while it is distilled
    (KA, weight ``distill``) from the given teacher's features at the feature points both families
    have, and its reconstruction target on unpaired data is the given teacher's output.
    """

    source: Literal["auto", "given", "train"] = "auto"
    base_width: int | None = None  # None: the given teacher's base width
    num_blocks: int = 9
    kernel_sizes: tuple[int, ...] = (1, 3, 5)
    reduction: int = 6  # --channels_reduction_factor
    norm: Literal["instance", "batch"] = "instance"
    distill: float = 1.0
    train: StageConfig = field(default_factory=StageConfig)

    def __post_init__(self) -> None:
        if self.base_width is not None:
            positive("teacher.base_width", self.base_width)
        positive("teacher.num_blocks", self.num_blocks)
        positive("teacher.reduction", self.reduction)
        non_negative("teacher.distill", self.distill)
        if self.source not in ("auto", "given", "train"):
            raise ConfigError(f"teacher.source must be auto, given or train, got {self.source!r}")


@dataclass(frozen=True)
class PruneConfig:
    """One-step pruning: one global threshold on the normalisation scales |γ| meets the MACs target.

    ``min_channels`` is the official ``--prune_cin_lb`` (the stem, downsampling, trunk and upsampling
    widths keep at least that many); every branch keeps at least one channel. ``init``: ``fresh``
    re-initialises the pruned student's convolutions as the official trainer does (N(0, 0.02)),
    ``inherit`` keeps the inception teacher's weights of the kept channels.
    """

    budget_macs: float | None = None  # paper-convention MACs at ``image_size``
    ratio: float | None = None  # fraction of the given teacher's paper MACs
    image_size: tuple[int, int] | None = None  # None: data.crop_size square
    min_channels: int = 16
    init: Literal["fresh", "inherit"] = "fresh"
    init_gain: float = 0.02
    tolerance: float = 1e-3  # relative precision of the threshold bisection (the official 1e-3)

    def __post_init__(self) -> None:
        positive("prune.min_channels", self.min_channels)
        positive("prune.tolerance", self.tolerance)
        positive("prune.init_gain", self.init_gain)
        if self.budget_macs is not None and self.ratio is not None:
            raise ConfigError("prune: give budget_macs or ratio, not both")
        for name in ("budget_macs", "ratio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"prune.{name} must be positive, got {value}")
        if self.init not in ("fresh", "inherit"):
            raise ConfigError(f"prune.init must be fresh or inherit, got {self.init!r}")


@dataclass(frozen=True)
class CatRecipe:
    """A whole CAT run: inception teacher, one-step pruning, KA-distilled student."""

    version: int = CONFIG_VERSION
    task: str = ""
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=4))
    loss: CatLoss = field(default_factory=CatLoss)
    discriminator: DiscriminatorConfig = field(
        default_factory=lambda: DiscriminatorConfig(base_width=128, norm="instance", conditional=True)
    )
    teacher: InceptionTeacherConfig = field(default_factory=InceptionTeacherConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    finetune: StageConfig = field(default_factory=StageConfig)  # the pruned student's KA distillation
    gate: GateConfig = field(default_factory=GateConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_version(self.version)
        if self.loss.distill > 0 and self.data.batch_size < 2:
            raise ConfigError(
                "data.batch_size: CAT's kernel alignment compares the samples of a batch (an n×n Gram "
                "matrix), so it is 1 for any batch of one; use data.batch_size >= 2 or loss.distill 0"
            )

    @property
    def image_size(self) -> tuple[int, int]:
        if self.prune.image_size is not None:
            return tuple(self.prune.image_size)  # type: ignore[return-value]
        return (self.data.crop_size, self.data.crop_size)


def load_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> CatRecipe:
    """Read a CAT recipe (with ``a.b=v`` overrides).

    Example:
        >>> r = load_recipe("configs/methods/cat/fonts.yaml", ["loss.distill=0.5"])
    """
    return load_method_recipe(CatRecipe, path, overrides)
