"""The CoroNetGAN recipe: frozen dataclasses read from the YAML files under ``configs/methods/coronet/``.

Data, discriminator, stage, gate and planner settings are the shared blocks of
:mod:`gancompress.methods.common.recipe`, so one dataset or schedule is written the same way for every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
)


@dataclass(frozen=True)
class CoronetLoss(GanLossConfig):
    """The GAN objective, and optional distillation from the teacher.

    ``objective``: ``pix2pix`` (GAN + L1 to the ground truth, paired data), ``cyclegan`` (LSGAN +
    cycle + identity, unpaired data, with a reverse generator trained alongside), or ``auto`` (by the
    dataset's kind).
    """

    objective: Literal["auto", "pix2pix", "cyclegan"] = "auto"
    recon: float = 100.0  # pix2pix: L1 to the ground truth
    cycle: float = 10.0  # CycleGAN: λ of both cycle losses
    identity: float = 0.5  # CycleGAN: identity loss weight, relative to ``cycle``
    distill_output: float = 0.0  # L1 between the student's and the teacher's outputs
    distill_features: float = 0.0  # MSE at the feature points through learnable 1×1 convs
    points: tuple[str, ...] | None = None  # feature points (None: all of the family's)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("recon", "cycle", "identity", "distill_output", "distill_features"):
            non_negative(f"loss.{name}", getattr(self, name))


@dataclass(frozen=True)
class HypernetConfig:
    """DHP's hypernetwork: the embedding size m and the scale of the initial latents."""

    embedding_dim: int = 8
    latent_std: float = 1.0

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            raise ConfigError(f"hypernet.embedding_dim must be positive, got {self.embedding_dim}")
        if self.latent_std <= 0:
            raise ConfigError(f"hypernet.latent_std must be positive, got {self.latent_std}")


@dataclass(frozen=True)
class PruneConfig:
    """Pruning while the GAN trains, and the compression target it stops at.

    The proximal step shrinks each latent by ``lr_latent · regularization`` (the current learning
    rate of the latents). ``min_widths`` are ArchSpec units (the scale of ``base_width``) per group;
    ``min_width`` applies to the groups not named there.
    """

    budget_macs: float | None = None  # paper-convention MACs at ``image_size``
    ratio: float | None = None  # target as a fraction of the teacher's paper MACs
    image_size: tuple[int, int] | None = None  # (H, W) for MACs; None: data.crop_size square
    regularization: float = 1.0
    lr_latent: float = 1e-3
    threshold: float = 0.05
    min_width: int = 1
    min_widths: dict[str, int] = field(default_factory=dict)
    groups: tuple[str, ...] | None = None  # the width groups to prune (None: all)
    train: StageConfig = field(default_factory=StageConfig)

    def __post_init__(self) -> None:
        if self.budget_macs is not None and self.ratio is not None:
            raise ConfigError("prune: give budget_macs or ratio, not both")
        for name in ("budget_macs", "ratio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"prune.{name} must be positive, got {value}")
        non_negative("prune.regularization", self.regularization)
        if self.lr_latent <= 0:
            raise ConfigError(f"prune.lr_latent must be positive, got {self.lr_latent}")
        if not 0 <= self.threshold < 1:
            raise ConfigError(f"prune.threshold must be in [0, 1), got {self.threshold}")
        if self.min_width < 1:
            raise ConfigError(f"prune.min_width must be at least 1, got {self.min_width}")
        for group, width in self.min_widths.items():
            if not isinstance(width, int) or isinstance(width, bool) or width < 1:
                raise ConfigError(f"prune.min_widths.{group} must be a positive integer, got {width!r}")


@dataclass(frozen=True)
class StartConfig:
    """The full-width generator a run without a teacher starts from (fresh weights).

    ``name``: the family (``resnet`` or ``unet``; ``--family`` on the command line); ``options``: its
    constructor options as in ``gancompress train``'s ``generator:`` block (``base_width``,
    ``num_blocks``, ``norm``, …; the image channels default to the data's); ``arch``: explicit
    starting widths (an ArchSpec string), else the family's widths at ``base_width``.
    """

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    arch: str | None = None


@dataclass(frozen=True)
class CoronetRecipe:
    """A whole CoroNetGAN run: prune while training, generate the weights once, fine-tune, export."""

    version: int = CONFIG_VERSION
    task: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    loss: CoronetLoss = field(default_factory=CoronetLoss)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    finetune: StageConfig = field(default_factory=StageConfig)
    generator: StartConfig | None = None  # without a teacher: the generator to start from (train's block)
    separable: bool | None = None  # ResNet: separable blocks in the pruned network (None: as the teacher)
    reverse_init: str | None = None  # CycleGAN: a saved B→A generator to start the reverse one from
    gate: GateConfig = field(default_factory=GateConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_version(self.version)
        if not self.prune.train.enabled:
            raise ConfigError("prune.train: the pruning stage needs some epochs (or max_steps > 0)")

    @property
    def image_size(self) -> tuple[int, int]:
        if self.prune.image_size is not None:
            return tuple(self.prune.image_size)  # type: ignore[return-value]
        return (self.data.crop_size, self.data.crop_size)

    def min_widths(self, groups: tuple[str, ...]) -> dict[str, int]:
        """The minimum width of every group (``min_widths`` entries over ``min_width``)."""
        unknown = sorted(set(self.prune.min_widths) - set(groups))
        if unknown:
            raise ConfigError(f"prune.min_widths: unknown width group(s) {unknown}; known: {list(groups)}")
        return {g: self.prune.min_widths.get(g, self.prune.min_width) for g in groups}


def load_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> CoronetRecipe:
    """Read a CoroNetGAN recipe (with ``a.b=v`` overrides).

    Example:
        >>> r = load_recipe("configs/methods/coronet/fonts.yaml", ["prune.ratio=0.1"])
    """
    return load_method_recipe(CoronetRecipe, path, overrides)
