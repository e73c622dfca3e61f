"""String-or-type factories for normalisation layers."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .elastic import ElasticBatchNorm2d, ElasticInstanceNorm2d, ElasticLayerNorm2d

NORMS = ("instance", "batch", "layer", "none")


def create_norm(kind: str, num_features: int, *, affine: bool | None = None) -> nn.Module:
    """Build a width-elastic norm by name.

    ``affine=None`` keeps each kind's usual default (instance: False, batch: True, layer: True).

    Example:
        >>> create_norm("instance", 64)
        ElasticInstanceNorm2d(64, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)
    """
    if kind == "instance":
        return ElasticInstanceNorm2d(num_features, affine=bool(affine), track_running_stats=False)
    if kind == "batch":
        return ElasticBatchNorm2d(num_features, affine=True if affine is None else affine)
    if kind == "layer":
        return ElasticLayerNorm2d(num_features, affine=True if affine is None else affine)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; known: {', '.join(NORMS)}")


def norm_has_bias(kind: str, affine: bool | None = None) -> bool:
    """Whether the conv before this norm needs its own bias (pix2pix: only when the norm has no shift)."""
    if kind == "batch":
        return affine is False
    if kind == "instance":
        return True
    return True
