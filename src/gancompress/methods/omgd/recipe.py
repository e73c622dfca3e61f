"""The OMGD recipe: frozen dataclasses read from the YAML files under ``configs/methods/omgd/``.

Data, discriminator, stage, gate and planner settings are the shared blocks of
:mod:`gancompress.methods.common.recipe`; the rest is OMGD's own: the target, the student, the two
online teachers and the loss weights of both sides.
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


@dataclass(frozen=True)
class TargetConfig:
    """The compression target the student's widths are chosen for (the command line's wins)."""

    budget_macs: float | None = None  # paper-convention MACs at ``image_size``
    ratio: float | None = None  # a fraction of the teacher's paper MACs
    image_size: tuple[int, int] | None = None  # (H, W) for MACs; None: data.crop_size square

    def __post_init__(self) -> None:
        if self.budget_macs is not None and self.ratio is not None:
            raise ConfigError("target: give budget_macs or ratio, not both")
        for name in ("budget_macs", "ratio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"target.{name} must be positive, got {value}")


@dataclass(frozen=True)
class StudentConfig:
    """The student: the teacher's family, every width scaled by one factor (the largest within the target).

    ``arch``: fixed widths instead (an architecture string of the teacher's family; still checked
    against the target). ``separable``: ResNet only, separable ("mobile") blocks as the official code's
    ``mobile_resnet_9blocks``; None keeps the teacher's choice (for the student and both teachers).
    """

    arch: str | None = None
    separable: bool | None = None


@dataclass(frozen=True)
class TeachersConfig:
    """The two teachers trained online beside the student.

    ``wide_scale``: the wider teacher's widths as a fraction of the given teacher's (1: the given
    teacher's architecture; the official scripts use ngf 64 with a 16 student, 48 with an 8 student).
    ``deep``: the deeper teacher (the student's widths times ``deep_scale``, with extra expansion
    residual blocks at every resolution: the official ``mobile_deepest_resnet`` / ``unet_deepest_256``);
    ``auto``: on for paired data, off for unpaired (the official CycleGAN distiller trains one teacher).
    ``init``: ``scratch`` (the official code: both teachers start from fresh weights) or ``teacher``
    (the wider teacher starts from the given teacher's weights; needs ``wide_scale: 1`` and the same
    separable choice). ``every``: teachers (and their discriminators) update every this many steps, the
    student every step (the official ``n_dis``). ``shared_discriminator``: one discriminator judges both
    teachers' outputs (the official ``n_share: 5``), else one each.
    """

    wide_scale: float = 1.0
    deep: bool | Literal["auto"] = "auto"
    deep_scale: float = 1.0
    deep_blocks: int = 2  # expansion residual blocks per insertion point (the official code: 2)
    init: Literal["scratch", "teacher"] = "scratch"
    every: int = 1
    shared_discriminator: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.wide_scale <= 1:
            raise ConfigError(f"teachers.wide_scale must be in (0, 1], got {self.wide_scale}")
        if self.deep_scale <= 0:
            raise ConfigError(f"teachers.deep_scale must be positive, got {self.deep_scale}")
        if self.deep not in (True, False, "auto"):
            raise ConfigError(f"teachers.deep must be true, false or auto, got {self.deep!r}")
        positive("teachers.deep_blocks", self.deep_blocks)
        positive("teachers.every", self.every)


@dataclass(frozen=True)
class OmgdLoss(GanLossConfig):
    """The teachers' GAN objective and the student's distillation terms (no GAN term for the student).

    Teachers: ``objective`` ``pix2pix`` (GAN + ``recon`` × L1 to the ground truth), ``cyclegan``
    (LSGAN + ``cycle`` × cycle L1 + ``identity`` · ``cycle`` × identity L1, a reverse generator per
    teacher) or ``auto`` (by the dataset's kind). Student, per teacher (summed): ``ssim`` × (1 − SSIM),
    ``style`` × Σ L1 of VGG16 Gram matrices (relu1_2 … relu4_3), ``feature`` × L1 of VGG16 relu2_2,
    ``tv`` × total variation (a sum over pixels, as the official code), plus ``cd`` × the channel-wise
    distillation at ``points`` of the wider teacher. The defaults are the official ``AGD_weights``
    ``1e1, 1e4, 1e1, 1e-5``.
    """

    objective: Literal["auto", "pix2pix", "cyclegan"] = "auto"
    recon: float = 100.0
    cycle: float = 10.0
    identity: float = 0.5
    pool_size: int = 50  # CycleGAN's image history per discriminator
    ssim: float = 10.0
    style: float = 1e4
    feature: float = 10.0
    tv: float = 1e-5
    cd: float = 0.0
    points: tuple[str, ...] | None = None  # feature points for cd (None: the family's official ones)
    vgg_source: str = "auto"  # hed | craft | auto | a local VGG16 weights file

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("recon", "cycle", "identity", "ssim", "style", "feature", "tv", "cd", "pool_size"):
            non_negative(f"loss.{name}", getattr(self, name))

    @property
    def uses_vgg(self) -> bool:
        return self.style > 0 or self.feature > 0


@dataclass(frozen=True)
class OmgdRecipe:
    """A whole OMGD run: two teachers and the student trained together, then the student saved as is."""

    version: int = CONFIG_VERSION
    task: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teachers: TeachersConfig = field(default_factory=TeachersConfig)
    loss: OmgdLoss = field(default_factory=OmgdLoss)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: StageConfig = field(default_factory=StageConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_version(self.version)
        if not self.train.enabled:
            raise ConfigError("train: the distillation stage needs some epochs (or max_steps > 0)")

    @property
    def image_size(self) -> tuple[int, int]:
        if self.target.image_size is not None:
            return tuple(self.target.image_size)  # type: ignore[return-value]
        return (self.data.crop_size, self.data.crop_size)


def load_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> OmgdRecipe:
    """Read an OMGD recipe (with ``a.b=v`` overrides).

    Example:
        >>> r = load_recipe("configs/methods/omgd/fonts.yaml", ["target.ratio=0.04"])
    """
    return load_method_recipe(OmgdRecipe, path, overrides)
