"""SPADE (Park et al., GauGAN): parameter-free norm modulated by a label-conditioned scale and shift."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .elastic import ElasticConv2d, ElasticSeparableConv2d
from .norms import create_norm


class SPADE(nn.Module):
    """``norm(x) * (1 + gamma(seg)) + beta(seg)``; the modulated width follows the input width.

    ``separable=True`` is GAN Compression's MobileSPADE: ``mlp_gamma`` and ``mlp_beta`` are separable
    convolutions (depthwise k×k → InstanceNorm → pointwise 1×1), as in its SubMobileSPADE. The hidden
    width (``mlp_shared``'s output) is elastic: ``forward(..., hidden=h)`` runs on its first ``h``.
    """

    def __init__(
        self,
        num_features: int,
        label_channels: int,
        hidden: int = 128,
        norm: str = "batch",
        kernel_size: int = 3,
        separable: bool = False,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "instance"):
            raise ConfigError(f"SPADE param-free norm must be 'batch' or 'instance', got {norm!r}")
        self.param_free_norm = create_norm(norm, num_features, affine=False)
        pad = kernel_size // 2
        self.mlp_shared = ElasticConv2d(label_channels, hidden, kernel_size, padding=pad)
        if separable:
            kw = dict(padding=pad, norm="instance", norm_affine=False)
            self.mlp_gamma: nn.Module = ElasticSeparableConv2d(hidden, num_features, kernel_size, **kw)
            self.mlp_beta: nn.Module = ElasticSeparableConv2d(hidden, num_features, kernel_size, **kw)
        else:
            self.mlp_gamma = ElasticConv2d(hidden, num_features, kernel_size, padding=pad)
            self.mlp_beta = ElasticConv2d(hidden, num_features, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor, hidden: int | None = None) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = F.relu(self.mlp_shared(segmap, hidden))
        c = x.shape[1]
        gamma = self.mlp_gamma(actv, c)
        beta = self.mlp_beta(actv, c)
        return normalized * (1 + gamma) + beta


class SPADEResnetBlock(nn.Module):
    """SPADE residual block: (SPADE → LeakyReLU → conv) ×2, plus a learned 1×1 shortcut when fin ≠ fout.

    Its three SPADEs share one hidden width, given at run time (GAN Compression scales it with the
    block's own width).
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        fmiddle: int,
        label_channels: int,
        *,
        hidden: int,
        norm: str,
        learned_shortcut: bool,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.learned_shortcut = learned_shortcut
        self.conv_0 = ElasticConv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = ElasticConv2d(fmiddle, fout, 3, padding=1)
        kw = dict(hidden=hidden, norm=norm, separable=separable)
        self.norm_0 = SPADE(fin, label_channels, **kw)
        self.norm_1 = SPADE(fmiddle, label_channels, **kw)
        if learned_shortcut:
            self.conv_s = ElasticConv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_channels, **kw)

    def forward(
        self,
        x: torch.Tensor,
        seg: torch.Tensor,
        middle: int | None = None,
        out: int | None = None,
        hidden: int | None = None,
    ) -> torch.Tensor:
        if self.learned_shortcut:
            x_s = self.conv_s(self.norm_s(x, seg, hidden), out)
        else:
            x_s = x
            out = x.shape[1]
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg, hidden), 0.2), middle)
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg, hidden), 0.2), out)
        return x_s + dx
