"""OMGD's distillation terms, as the official code defines them (``distillers/multiteacher_distiller.py``).

Output level, between the student's image and a teacher's (detached): 1 − SSIM, L1 of VGG16 Gram
matrices at relu1_2 … relu4_3 (style), L1 of VGG16 relu2_2 (feature), and the student's total
variation. Intermediate level: each student feature map goes through a 1×1 conv (no bias) + BN + ReLU
to the teacher's channel count; the loss is the MSE of the two maps' spatial means (one number per
channel: "channel-wise" distillation).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...metrics.vgg import IMAGENET_STD

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
FEATURE_LAYER = "relu2_2"
# The official VGG16 sees (x + 1) / 2 without ImageNet normalisation; ImageNet-normalised features
# (``VGG16Features.perceptual``) are about 1/std larger, so they are scaled back by the mean std for
# the official weights (1e4 on Gram matrices, 1e1 on relu2_2) to mean what they meant there.
OFFICIAL_FEATURE_SCALE = sum(IMAGENET_STD) / 3


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(like)
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of two image batches as the official ``pytorch_ssim``: Gaussian window 11, σ 1.5,
    zero padding, C1 = 0.01², C2 = 0.03², on the images' own scale ([-1, 1] here, as there)."""
    c = a.shape[1]
    w = _gaussian_window(window, sigma, c, a)
    pad = window // 2
    mu_a, mu_b = F.conv2d(a, w, padding=pad, groups=c), F.conv2d(b, w, padding=pad, groups=c)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = F.conv2d(a * a, w, padding=pad, groups=c) - mu_aa
    var_b = F.conv2d(b * b, w, padding=pad, groups=c) - mu_bb
    cov = F.conv2d(a * b, w, padding=pad, groups=c) - mu_ab
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))).mean()


def gram(feats: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C·H·W (the official ``gram``)."""
    b, c, h, w = feats.shape
    f = feats.reshape(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Σ |horizontal differences| + Σ |vertical differences| over the batch (a sum, as the official)."""
    return (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum() + (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum()


def vgg_features(vgg: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """VGG16 features at the official network's scale (see :data:`OFFICIAL_FEATURE_SCALE`)."""
    embed = getattr(vgg, "perceptual", vgg)
    if images.shape[1] == 1:  # grey images: the same channel to R, G and B
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] != 3:
        raise ConfigError(
            f"loss.style / loss.feature: VGG16 takes 1- or 3-channel images, got {images.shape[1]}"
        )
    return {k: v * OFFICIAL_FEATURE_SCALE for k, v in embed(images).items()}


def output_terms(
    student: torch.Tensor,
    teacher: torch.Tensor,
    weights: Mapping[str, float],
    vgg: nn.Module | None,
    student_feats: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted output-level terms for one teacher (``weights``: ssim, style, feature, tv).

    ``student_feats``: the student's VGG features when already computed (shared across teachers).
    """
    teacher = teacher.detach()
    out: dict[str, torch.Tensor] = {}
    if weights["ssim"] > 0:
        out["ssim"] = weights["ssim"] * (1 - ssim(student, teacher))
    if weights["style"] > 0 or weights["feature"] > 0:
        if vgg is None:
            raise ConfigError("loss.style / loss.feature need a VGG16 feature network")
        fs = student_feats if student_feats is not None else vgg_features(vgg, student)
        with torch.no_grad():
            ft = vgg_features(vgg, teacher)
        if weights["style"] > 0:
            out["style"] = weights["style"] * sum(F.l1_loss(gram(fs[n]), gram(ft[n])) for n in STYLE_LAYERS)
        if weights["feature"] > 0:
            out["feature"] = weights["feature"] * F.l1_loss(fs[FEATURE_LAYER], ft[FEATURE_LAYER])
    if weights["tv"] > 0:
        out["tv"] = weights["tv"] * total_variation(student)
    return out


def connector(student_channels: int, teacher_channels: int) -> nn.Sequential:
    """The official ``build_feature_connector``: 1×1 conv (no bias) → BatchNorm → ReLU.

    Initialised as the official code leaves it: its He init is overwritten by ``init_net`` (conv
    N(0, 0.02), BatchNorm scale N(1, 0.02), shift 0).
    """
    conv = nn.Conv2d(student_channels, teacher_channels, 1, bias=False)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    bn = nn.BatchNorm2d(teacher_channels)
    nn.init.normal_(bn.weight, 1.0, 0.02)
    nn.init.zeros_(bn.bias)
    return nn.Sequential(conv, bn, nn.ReLU(inplace=True))


class ChannelDistillation(nn.Module):
    """Channel-wise distillation at feature points: MSE of spatial means after the connectors.

    Example:
        >>> cd = ChannelDistillation({"block3": 16}, {"block3": 64})
        >>> loss = cd({"block3": s_feat}, {"block3": t_feat})
    """

    def __init__(self, student: Mapping[str, int], teacher: Mapping[str, int]) -> None:
        super().__init__()
        missing = sorted(set(student) - set(teacher))
        if missing:
            raise ConfigError(f"loss.points: the wider teacher has no feature point(s) {missing}")
        self.connectors = nn.ModuleDict({p: connector(c, teacher[p]) for p, c in student.items()})

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(self.connectors)

    def forward(
        self, student_feats: Mapping[str, torch.Tensor], teacher_feats: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(student_feats.values())).device)
        for point, conn in self.connectors.items():
            source = conn(student_feats[point]).mean(dim=(2, 3))
            target = teacher_feats[point].detach().mean(dim=(2, 3))
            total = total + (source - target).pow(2).mean()
        return total
