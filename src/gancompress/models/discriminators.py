"""Discriminators: PatchGAN (pix2pix/CycleGAN), pooled (GAN Slimming) and multi-scale (pix2pixHD/GauGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from ..errors import ConfigError
from ..layers import create_norm, norm_has_bias
from .registry import DISCRIMINATORS


@DISCRIMINATORS.register("patchgan")
class PatchDiscriminator(nn.Module):
    """PatchGAN of pix2pix: ``num_layers`` stride-2 convs, one stride-1 conv, a 1-channel logit map.

    ``forward(x, return_features=True)`` also returns every intermediate activation (for GauGAN's
    feature-matching loss).
    """

    norm_affine: bool | None = None  # the norm's own default (instance: no affine)

    def __init__(
        self,
        in_channels: int = 6,
        base_width: int = 64,
        num_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"patchgan.num_layers must be at least 1, got {num_layers}")
        self.config = dict(
            in_channels=in_channels,
            base_width=base_width,
            num_layers=num_layers,
            norm=norm,
            spectral_norm=spectral_norm,
        )
        bias = norm_has_bias(norm) if not spectral_norm else True
        wrap = add_spectral_norm if spectral_norm else (lambda m: m)
        layers = [nn.Sequential(wrap(nn.Conv2d(in_channels, base_width, 4, 2, 1)), nn.LeakyReLU(0.2, True))]
        mult = 1
        for n in range(1, num_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers.append(
                nn.Sequential(
                    wrap(nn.Conv2d(base_width * prev, base_width * mult, 4, stride, 1, bias=bias)),
                    create_norm(norm, base_width * mult, affine=self.norm_affine),
                    nn.LeakyReLU(0.2, True),
                )
            )
        layers.append(nn.Sequential(nn.Conv2d(base_width * mult, 1, 4, 1, 1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return (x, feats[:-1]) if return_features else x


@DISCRIMINATORS.register("pooled")
class PooledDiscriminator(PatchDiscriminator):
    """GAN Slimming's discriminator (VITA-Group/GAN-Slimming ``models.Discriminator``): the PatchGAN
    layers with affine InstanceNorm, the logit map average-pooled to one logit per image (N × 1).

    At its defaults (3 input channels, base width 64, 3 layers) it has the official 2,766,529 parameters.
    """

    norm_affine = True

    def __init__(
        self,
        in_channels: int = 3,
        base_width: int = 64,
        num_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__(in_channels, base_width, num_layers, norm, spectral_norm)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        out = super().forward(x, return_features)
        logits, feats = out if return_features else (out, None)
        pooled = F.adaptive_avg_pool2d(logits, 1).flatten(1)
        return (pooled, feats) if return_features else pooled


@DISCRIMINATORS.register("multiscale")
class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the input downsampled by 2 each time (pix2pixHD, GauGAN).

    Returns a list of logit maps (and with ``return_features`` a list of feature lists).
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_width: int = 64,
        num_layers: int = 4,
        num_scales: int = 2,
        norm: str = "instance",
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.config = dict(
            in_channels=in_channels,
            base_width=base_width,
            num_layers=num_layers,
            num_scales=num_scales,
            norm=norm,
            spectral_norm=spectral_norm,
        )
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, base_width, num_layers, norm, spectral_norm)
            for _ in range(num_scales)
        )

    def forward(self, x: torch.Tensor, return_features: bool = False):
        logits, feats = [], []
        for i, d in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out = d(x, return_features=True)
            logits.append(out[0])
            feats.append(out[1])
        return (logits, feats) if return_features else logits
