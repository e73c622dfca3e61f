"""The config blocks and checks every recipe shares (teacher training and every compression method).

One definition of the image data block, the discriminator block, the GAN loss block, the field
checks and the version rule; :mod:`gancompress.training.recipe` and
:mod:`gancompress.methods.common.recipe` extend these blocks with what only they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import CONFIG_VERSION
from .errors import ConfigError


def positive(where: str, value: float) -> None:
    """Raise a :class:`ConfigError` naming ``where`` unless ``value > 0``."""
    if value <= 0:
        raise ConfigError(f"{where} must be positive, got {value}")


def non_negative(where: str, value: float) -> None:
    """Raise a :class:`ConfigError` naming ``where`` unless ``value >= 0``."""
    if value < 0:
        raise ConfigError(f"{where} must be non-negative, got {value}")


def check_version(version: int) -> None:
    """The one version rule of every recipe: 1 up to this gancompress's ``CONFIG_VERSION``.

    Example:
        >>> check_version(1)
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"version: a recipe version is a positive integer, got {version!r}")
    if version > CONFIG_VERSION:
        raise ConfigError(
            f"version: recipe version {version} is newer than this gancompress reads ({CONFIG_VERSION})"
        )


@dataclass(frozen=True)
class ImageDataConfig:
    """How a dataset folder is read: its layout, direction, and the training resize/crop/flip."""

    kind: Literal["auto", "paired", "unpaired", "semantic"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    num_classes: int | None = None  # semantic data: ids in the label maps (default: the dataset's metadata)

    def __post_init__(self) -> None:
        positive("data.load_size", self.load_size)
        positive("data.crop_size", self.crop_size)
        if self.num_classes is not None:
            positive("data.num_classes", self.num_classes)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """A discriminator of the registry (``patchgan`` or ``multiscale``) and its constructor options."""

    name: Literal["patchgan", "multiscale", "pooled"] = "patchgan"
    base_width: int = 64
    num_layers: int = 3
    num_scales: int = 2
    norm: str = "batch"
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        positive("discriminator.base_width", self.base_width)
        positive("discriminator.num_layers", self.num_layers)
        positive("discriminator.num_scales", self.num_scales)


@dataclass(frozen=True)
class GanLossConfig:
    """The GAN term every objective has: its weight and its form."""

    gan: float = 1.0
    gan_mode: Literal["hinge", "lsgan", "vanilla"] = "vanilla"

    def __post_init__(self) -> None:
        non_negative("loss.gan", self.gan)
