"""The GAN Compression / Fast GAN Compression recipe: frozen dataclasses read from YAML.

Every hyperparameter lives in the YAML recipes under ``configs/methods/gan_compression/`` and
``configs/methods/fast_gan_compression/``; these classes only say which fields exist and check them.
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
    positive,
)

__all__ = ["DataConfig", "DiscriminatorConfig", "GateConfig", "PlannerConfig", "StageConfig"]

GAN_MODES = ("hinge", "lsgan", "vanilla")
METRICS = ("psnr", "l1", "fid", "kid", "miou")


@dataclass(frozen=True)
class LossConfig(GanLossConfig):
    """Loss weights of the distillation objective (the paper's per-task values are recipe defaults)."""

    gan_mode: Literal["hinge", "lsgan", "vanilla"] = "hinge"
    recon: float = 100.0
    recon_target: Literal["ground_truth", "teacher"] = "ground_truth"
    distill: float = 1.0
    points: tuple[str, ...] | None = None  # feature points to distil (None: the family's usual ones)
    feature_matching: float = 0.0  # GauGAN: L1 between discriminator features of real and fake
    vgg: float = 0.0  # GauGAN: its VGG loss (metrics.vgg.VGGPerceptualLoss) against the ground truth
    vgg_source: str = "auto"  # packaged VGG16 weights for it: hed, craft, auto, or a file path
    style: float = 0.0  # MUNIT: L1 between student and teacher style codes

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("recon", "distill", "feature_matching", "vgg", "style"):
            non_negative(f"loss.{name}", getattr(self, name))


@dataclass(frozen=True)
class MobileTeacherConfig:
    """GAN Compression's first stage: a separable ("mobile") teacher distilled from the original.

    ``path`` accepts an already trained one (a saved generator directory) instead of training it.
    Families without a separable variant use the original teacher itself in this role.
    """

    path: str | None = None
    base_width: int | None = None  # None: the teacher's base width
    train: StageConfig = field(default_factory=StageConfig)


@dataclass(frozen=True)
class DistillConfig:
    """GAN Compression's pre-distillation (the official ``distill.sh``), between the mobile teacher and
    the supernet: a fixed-width student that starts from the mobile teacher's most important channels
    (L1 magnitude, as the official weight transfer), is distilled from the mobile teacher, and is the
    supernet's starting point. Without this block the supernet starts from the mobile teacher itself,
    L1-pruned to the search space's largest widths.
    """

    student_ngf: int | None = None  # every width group at this width (None: the space's largest widths)
    train: StageConfig = field(default_factory=StageConfig)

    def __post_init__(self) -> None:
        if self.student_ngf is not None:
            positive("distill.student_ngf", self.student_ngf)


@dataclass(frozen=True)
class SupernetConfig:
    """The once-for-all student: its search space, sampling rule and training stage."""

    search_space: dict[str, Any] | str = field(default_factory=dict)
    sampling: Literal["uniform", "sandwich"] = "uniform"
    separable: bool | None = None  # ResNet: the student's blocks (None: separable, as the paper)
    # Where the supernet's weights start. "auto": as the paper (GAN Compression: the mobile teacher's
    # most important channels; Fast GAN Compression: fresh). "teacher": the teacher's most important
    # channels (L1 importance over the coupled width groups), for a student of the teacher's own
    # variant (ResNet: separable false): it starts from what the teacher computes, which is what makes
    # a paper-size teacher compress within a CPU budget (docs/benchmarks.md, Real photos).
    init: Literal["auto", "teacher"] = "auto"
    train: StageConfig = field(default_factory=StageConfig)


@dataclass(frozen=True)
class SearchConfig:
    """How the subnet is chosen: exhaustive (GAN Compression) or evolutionary (Fast GAN Compression)."""

    strategy: Literal["exhaustive", "evolution"] = "evolution"
    metric: Literal["psnr", "l1", "fid", "kid", "miou"] = "fid"
    metric_target: Literal["ground_truth", "teacher"] = "ground_truth"  # psnr / l1 compare against this
    segmenter: str | None = None  # miou: a shipped segmenter's name or its .json path (None: the dataset's)
    # fid / kid: the feature extractor, any name `gancompress.metrics.create_extractor` knows
    # ("segmenter:labels2sat" for satellite tiles); None: the shipped domain classifier that recognises
    # the real images, else HED's VGG16
    extractor: str | None = None
    budget_macs: float | None = None  # paper-convention MACs at ``image_size``
    budget_latency_ms: float | None = None
    ratio: float | None = None  # budget as a fraction of the teacher's paper MACs
    image_size: tuple[int, int] | None = None  # (H, W) for MACs and latency; None: data.crop_size square
    population: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.2  # evolution_search.py's default (its horse2zebra script: 0.4)
    weighted_sample: float = 1.0  # > 1: the first generation favours smaller widths (official flag)
    weight_strategy: Literal["arithmetic", "geometric"] = "arithmetic"
    max_candidates: int | None = None  # exhaustive: refuse spaces with more feasible archs than this
    calibration_batches: int = 10  # BatchNorm statistics recomputed on this many training batches
    eval_batch_size: int = 8
    latency_repeats: int = 10
    latency_warmup: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        positive("search.population", self.population)
        non_negative("search.generations", self.generations)
        if not 0 < self.parent_ratio <= 1:
            raise ConfigError(f"search.parent_ratio must be in (0, 1], got {self.parent_ratio}")
        if not 0 <= self.mutation_ratio <= 1:
            raise ConfigError(f"search.mutation_ratio must be in [0, 1], got {self.mutation_ratio}")
        if not 0 <= self.mutate_prob <= 1:
            raise ConfigError(f"search.mutate_prob must be in [0, 1], got {self.mutate_prob}")
        positive("search.weighted_sample", self.weighted_sample)
        given = [n for n in ("budget_macs", "budget_latency_ms", "ratio") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ConfigError(f"search: give one budget, not {given}")
        for n in given:
            positive(f"search.{n}", getattr(self, n))
        non_negative("search.calibration_batches", self.calibration_batches)
        positive("search.eval_batch_size", self.eval_batch_size)
        positive("search.latency_repeats", self.latency_repeats)


@dataclass(frozen=True)
class GanCompressionRecipe:
    """A whole GAN Compression / Fast GAN Compression run."""

    version: int = CONFIG_VERSION
    task: str = ""  # a label for reports (e.g. "edges2shoes pix2pix")
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    mobile_teacher: MobileTeacherConfig = field(default_factory=MobileTeacherConfig)
    distill: DistillConfig | None = None  # GAN Compression only; None: no fixed-width pre-distillation
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    finetune: StageConfig = field(default_factory=StageConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_version(self.version)
        if not self.supernet.search_space:
            raise ConfigError("supernet.search_space: give the width choices of every width group")

    @property
    def image_size(self) -> tuple[int, int]:
        if self.search.image_size is not None:
            return tuple(self.search.image_size)  # type: ignore[return-value]
        return (self.data.crop_size, self.data.crop_size)


def load_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> GanCompressionRecipe:
    """Read a recipe YAML (with ``a.b=v`` overrides) into a validated :class:`GanCompressionRecipe`.

    Example:
        >>> r = load_recipe("configs/methods/fast_gan_compression/fonts.yaml", ["search.population=20"])
    """
    return load_method_recipe(GanCompressionRecipe, path, overrides)
