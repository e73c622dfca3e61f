"""The pix2pix U-Net generator (``unet_256``: 8 stride-2 levels with skip connections).

Architecture string: one number per level at the scale of ``base_width``, the output width of each
downsampling conv, with multipliers 1, 2, 4, 8, 8, … (capped at 8). The decoder mirrors it: the
upsampling conv of level ``i`` outputs the width of the skip it is concatenated with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import ArchSpec, WidthGroup
from ..errors import ConfigError
from ..layers import ElasticConv2d, ElasticConvTranspose2d, create_norm, norm_has_bias
from .base import Generator
from .registry import GENERATORS


@GENERATORS.register("unet")
class UnetGenerator(Generator):
    """U-Net of pix2pix (Isola et al.): BatchNorm, LeakyReLU 0.2 down, ReLU up, dropout 0.5 optional.

    ``num_downs=8`` with 256×256 inputs is the published ``unet_256`` (54.4M parameters); smaller
    ``num_downs`` serve small images (the input side must be divisible by ``2**num_downs``).
    Feature points for distillation: ``bottleneck`` (innermost output) and ``decoder{k}`` (the output
    of the upsampling conv back at level k).
    """

    family = "unet"

    def __init__(
        self,
        arch: ArchSpec | str | None = None,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        base_width: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        norm_affine: bool | None = None,
        dropout: float = 0.0,
    ) -> None:
        if num_downs < 5:
            raise ConfigError(f"unet.num_downs must be at least 5, got {num_downs}")
        options = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=base_width,
            num_downs=num_downs,
            norm=norm,
            norm_affine=norm_affine,
            dropout=dropout,
        )
        super().__init__(arch, options)
        w = list(self.arch.channels(self.width_groups).values())  # w[0] .. w[n-1]
        n = num_downs
        bias = norm_has_bias(norm, norm_affine)
        self.down = nn.ModuleList()
        self.down_norm = nn.ModuleList()
        for i in range(n):
            cin = in_channels if i == 0 else w[i - 1]
            self.down.append(ElasticConv2d(cin, w[i], 4, stride=2, padding=1, bias=bias))
            # the outermost and innermost downsampling convs have no norm (pix2pix)
            has_norm = 0 < i < n - 1
            self.down_norm.append(create_norm(norm, w[i], affine=norm_affine) if has_norm else nn.Identity())
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        for i in range(n):  # up[i] produces the width of level i-1 (or the image for i = 0)
            cout = out_channels if i == 0 else w[i - 1]
            splits = None if i == n - 1 else (w[i], w[i])
            cin = w[i] if i == n - 1 else 2 * w[i]
            self.up.append(
                ElasticConvTranspose2d(
                    cin, cout, 4, stride=2, padding=1, bias=True if i == 0 else bias, in_splits=splits
                )
            )
            self.up_norm.append(create_norm(norm, cout, affine=norm_affine) if i > 0 else nn.Identity())
        # pix2pix puts dropout on the num_downs - 5 levels between level 3 and the innermost one
        self.dropout_levels = set(range(4, n - 1)) if dropout > 0 else set()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.feature_points = ("bottleneck",) + tuple(f"decoder{k}" for k in range(n - 1, 0, -1))

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        return tuple(WidthGroup(f"level{i + 1}", min(2**i, 8)) for i in range(self.options["num_downs"]))

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        w = list(self.channels(arch).values())
        n = self.options["num_downs"]
        out = {"bottleneck": w[n - 1]}
        out.update({f"decoder{k}": w[k - 1] for k in range(n - 1, 0, -1)})
        return out

    def forward(self, x, arch=None, features=(), **kwargs):  # feature_points is per instance here
        unknown = set(features) - set(self.feature_points)
        if unknown:
            raise ConfigError(
                f"unknown feature point(s) {sorted(unknown)} for unet; known: {list(self.feature_points)}"
            )
        return (
            super().forward(x, arch, (), **kwargs) if not features else self._with_features(x, arch, features)
        )

    def _with_features(self, x, arch, features):
        feats: dict[str, torch.Tensor] = {}
        out = self._forward(x, self.channels(arch), feats, set(features))
        return out, {name: feats[name] for name in features}

    def _forward(self, x, ch, feats, want, **kwargs):
        if kwargs:
            raise ConfigError(f"unet generator takes no extra inputs, got {sorted(kwargs)}")
        w = list(ch.values())
        n = self.options["num_downs"]
        skips = []
        h = x
        for i in range(n):
            if i > 0:
                h = F.leaky_relu(h, 0.2)
            h = self.down_norm[i](self.down[i](h, w[i]))
            skips.append(h)
        if "bottleneck" in want:
            feats["bottleneck"] = h
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                h = torch.cat([skips[i], h], dim=1)
                segments = (w[i], w[i])
            else:
                segments = None
            h = self.up[i](F.relu(h), None if i == 0 else w[i - 1], segments)
            if i == 0:
                return torch.tanh(h)
            h = self.up_norm[i](h)
            if i in self.dropout_levels:
                h = self.drop(h)
            if f"decoder{i}" in want:
                feats[f"decoder{i}"] = h
        raise AssertionError("unreachable")

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        h, w = size or self.default_size
        g = torch.Generator().manual_seed(0)
        return torch.rand(batch, self.options["in_channels"], h, w, generator=g) * 2 - 1
