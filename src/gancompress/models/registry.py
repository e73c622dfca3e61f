"""The generator and discriminator registries and their ``create_*`` / ``list_*`` entry points."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..arch import ArchSpec
from ..registry import Registry
from .base import Generator

GENERATORS: Registry[Generator] = Registry("generator")
DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")


def create_generator(name: str, arch: ArchSpec | str | None = None, **options: Any) -> Generator:
    """Build a registered generator family.

    Example:
        >>> g = create_generator("resnet", arch="16_16_32_16_32_32_16_16", separable=True)
    """
    cls = GENERATORS.get(name)
    return cls.from_options(arch, options)  # type: ignore[attr-defined]


def create_discriminator(name: str, **options: Any) -> nn.Module:
    """Build a registered discriminator (``patchgan``, ``multiscale``)."""
    return DISCRIMINATORS.create(name, **options)


def list_generators(pattern: str = "*") -> list[str]:
    return GENERATORS.list(pattern)


def list_discriminators(pattern: str = "*") -> list[str]:
    return DISCRIMINATORS.list(pattern)
