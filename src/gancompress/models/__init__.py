"""Generator and discriminator families, each taking its widths as data."""

from . import discriminators, inception, munit, resnet, spade, unet  # noqa: F401  (register the families)
from .base import Generator
from .registry import (
    DISCRIMINATORS,
    GENERATORS,
    create_discriminator,
    create_generator,
    list_discriminators,
    list_generators,
)

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "Generator",
    "create_discriminator",
    "create_generator",
    "list_discriminators",
    "list_generators",
]
