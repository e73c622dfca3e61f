"""The GAN Slimming recipe: frozen dataclasses read from the YAML files under ``configs/methods/gan_slimming/``.

Data, discriminator, stage, gate and planner settings are the shared blocks of
:mod:`gancompress.methods.common.recipe`, so one dataset or schedule is written the same way for every method.
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
)

DISTILL_KINDS = ("vgg", "mse", "l1_ssim")


@dataclass(frozen=True)
class SlimLoss(GanLossConfig):
    """The student's objective: ``gan`` × GAN loss + ``beta`` × distillation of the teacher's output.

    ``distill``: ``vgg`` (the paper: L1 between VGG16 ``content_layer`` features plus ``style_weight``
    × the MSE of Gram matrices at relu1_2, relu2_2, relu3_3, relu4_3), ``mse`` (the official code's
    weight-free option), or ``l1_ssim`` (L1 + (1 − SSIM), also weight-free).
    """

    gan_mode: Literal["hinge", "lsgan", "vanilla"] = "lsgan"
    beta: float = 20.0
    distill: Literal["vgg", "mse", "l1_ssim"] = "vgg"
    vgg_source: str = "auto"  # hed | craft | auto | a local VGG16 weights file
    content_layer: str = "relu1_2"
    style_weight: float = 1e5
    pool_size: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beta", "style_weight", "pool_size"):
            non_negative(f"loss.{name}", getattr(self, name))
        if self.distill not in DISTILL_KINDS:
            raise ConfigError(f"loss.distill must be one of {DISTILL_KINDS}, got {self.distill!r}")


@dataclass(frozen=True)
class SlimConfig:
    """Sparsity on the normalisation scales γ, and the compression target.

    After every step γ takes a proximal step ``sign(γ)·max(|γ| − lr_gamma·rho, 0)`` (``lr_gamma`` is
    the current, decayed learning rate of γ's SGD). With ``budget_macs`` or ``ratio`` a final global
    threshold on |γ| switches off the weakest channels until the target is met. ``groups`` names the
    width groups whose scales are sparsified (None: every group with normalisation scales).
    """

    rho: float = 0.01
    lr_gamma: float = 0.1
    momentum: float = 0.5
    budget_macs: float | None = None  # paper-convention MACs at ``image_size``
    ratio: float | None = None  # target as a fraction of the teacher's paper MACs
    image_size: tuple[int, int] | None = None  # (H, W) for MACs; None: data.crop_size square
    groups: tuple[str, ...] | None = None
    train: StageConfig = field(default_factory=StageConfig)

    def __post_init__(self) -> None:
        non_negative("slim.rho", self.rho)
        if self.lr_gamma <= 0:
            raise ConfigError(f"slim.lr_gamma must be positive, got {self.lr_gamma}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"slim.momentum must be in [0, 1), got {self.momentum}")
        if self.budget_macs is not None and self.ratio is not None:
            raise ConfigError("slim: give budget_macs or ratio, not both")
        for name in ("budget_macs", "ratio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"slim.{name} must be positive, got {value}")


@dataclass(frozen=True)
class QuantConfig:
    """Quantisation-aware training with the straight-through estimator.

    ``bits`` 32 = none (GS-32); 8 = GS-8. Weights: symmetric per layer (scale = max|W| / (2^(b−1)−1)).
    Activations entering each conv (not the first layer's input): clamped to [0, ``act_max``] and
    quantised unsigned when they are non-negative by construction (after a ReLU), else clamped to
    [−act_max, act_max] and quantised symmetric.
    """

    bits: int = 32
    act_max: float = 4.0
    calibration_images: int = 16  # training inputs that calibrate the int8 ONNX export

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 32:
            raise ConfigError(f"quant.bits must be in [2, 32], got {self.bits}")
        if self.act_max <= 0:
            raise ConfigError(f"quant.act_max must be positive, got {self.act_max}")
        if self.calibration_images < 1:
            raise ConfigError(f"quant.calibration_images must be at least 1, got {self.calibration_images}")


@dataclass(frozen=True)
class GanSlimmingRecipe:
    """A whole GAN Slimming run: sparse + quantised distillation, channel removal, fine-tuning, export."""

    version: int = CONFIG_VERSION
    task: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    loss: SlimLoss = field(default_factory=SlimLoss)
    discriminator: DiscriminatorConfig = field(
        default_factory=lambda: DiscriminatorConfig(conditional=False, norm="instance")
    )
    slim: SlimConfig = field(default_factory=SlimConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    finetune: StageConfig = field(default_factory=StageConfig)
    weight_decay: float = 1e-3  # Adam weight decay of G's weights and of D
    # the learning rate of both stages (G, D and γ): ``linear`` the training loop's constant-then-linear
    # decay (``epochs`` then ``decay_epochs``); ``cosine`` the official gs.py / finetune.py schedule,
    # ``(1 + cos(π·epoch/epochs))/2`` over the whole stage, stepped once per epoch
    lr_schedule: Literal["linear", "cosine"] = "linear"
    gate: GateConfig = field(default_factory=GateConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_version(self.version)
        if not self.slim.train.enabled:
            raise ConfigError("slim.train: the slimming stage needs some epochs (or max_steps > 0)")
        non_negative("weight_decay", self.weight_decay)

    @property
    def image_size(self) -> tuple[int, int]:
        if self.slim.image_size is not None:
            return tuple(self.slim.image_size)  # type: ignore[return-value]
        return (self.data.crop_size, self.data.crop_size)


def load_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> GanSlimmingRecipe:
    """Read a GAN Slimming recipe (with ``a.b=v`` overrides).

    Example:
        >>> r = load_recipe("configs/methods/gan_slimming/fonts.yaml", ["slim.rho=0.02"])
    """
    return load_method_recipe(GanSlimmingRecipe, path, overrides)
