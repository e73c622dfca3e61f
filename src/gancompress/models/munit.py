"""The MUNIT generator (Huang et al.): content encoder, style encoder, MLP, AdaIN decoder.

Architecture string (10 numbers at the scale of ``base_width``)::

    style_stem _ style_down1(×2) _ style_down(×4) _ content_stem _ content_down1(×2) _ content(×4)
    _ enc_hidden(×4) _ dec_hidden(×4) _ up1(×2) _ up2

``content`` is the content-code width (the residual trunk of encoder and decoder); ``enc_hidden``
and ``dec_hidden`` are the inner widths of their residual blocks.

One deliberate layout change from the official code: the MLP ends in one scale head and one shift
head per AdaIN layer instead of one flat vector, so that a narrower subnet takes the first channels
of each head (parameter and MAC counts are the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import ArchSpec, WidthGroup
from ..errors import ConfigError
from ..layers import ElasticConv2d, ElasticLayerNorm2d, ElasticLinear, create_norm
from .base import Generator
from .registry import GENERATORS

MUNIT_GROUPS = (
    WidthGroup("style_stem", 1),
    WidthGroup("style_down1", 2),
    WidthGroup("style_down", 4),
    WidthGroup("content_stem", 1),
    WidthGroup("content_down1", 2),
    WidthGroup("content", 4),
    WidthGroup("enc_hidden", 4),
    WidthGroup("dec_hidden", 4),
    WidthGroup("up1", 2),
    WidthGroup("up2", 1),
)


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad_mode: str = "reflect") -> ElasticConv2d:
    return ElasticConv2d(
        cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 1, padding_mode=pad_mode
    )


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance norm: per-sample, per-channel normalisation with style-given scale and shift."""
    return F.instance_norm(x, eps=eps) * scale[:, :, None, None] + shift[:, :, None, None]


class ContentResBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, pad_mode: str) -> None:
        super().__init__()
        self.conv1 = _conv(dim, hidden, 3, pad_mode=pad_mode)
        self.norm1 = create_norm("instance", hidden)
        self.conv2 = _conv(hidden, dim, 3, pad_mode=pad_mode)
        self.norm2 = create_norm("instance", dim)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x, hidden)))
        return x + self.norm2(self.conv2(h, x.shape[1]))


class AdainResBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, pad_mode: str) -> None:
        super().__init__()
        self.conv1 = _conv(dim, hidden, 3, pad_mode=pad_mode)
        self.conv2 = _conv(hidden, dim, 3, pad_mode=pad_mode)

    def forward(self, x: torch.Tensor, hidden: int, params: list[torch.Tensor]) -> torch.Tensor:
        s1, b1, s2, b2 = params
        h = F.relu(adain(self.conv1(x, hidden), s1, b1))
        return x + adain(self.conv2(h, x.shape[1]), s2, b2)


@GENERATORS.register("munit")
class MunitGenerator(Generator):
    """MUNIT's AdaIN generator as a translator: content of ``x`` rendered in a style.

    ``forward(x, style=None, style_image=None)``: the style code is ``style`` if given, else the style
    encoder applied to ``style_image``, else to ``x`` itself (so a plain call runs, and is profiled
    with, the style encoder, as the published 77.3G MACs are).
    """

    family = "munit"
    feature_points = ("content", "style")

    def __init__(
        self,
        arch: ArchSpec | str | None = None,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        base_width: int = 64,
        style_dim: int = 8,
        num_downsample: int = 2,
        num_res: int = 4,
        style_downsample: int = 4,
        mlp_dim: int = 256,
        padding: str = "reflect",
    ) -> None:
        if num_downsample != 2:
            raise ConfigError(
                f"munit.num_downsample must be 2 (the 10-number architecture), got {num_downsample}"
            )
        if style_downsample < 2:
            raise ConfigError(f"munit.style_downsample must be at least 2, got {style_downsample}")
        options = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=base_width,
            style_dim=style_dim,
            num_downsample=num_downsample,
            num_res=num_res,
            style_downsample=style_downsample,
            mlp_dim=mlp_dim,
            padding=padding,
        )
        super().__init__(arch, options)
        ch = self.arch.channels(self.width_groups)
        pad = {"reflect": "reflect", "zero": "zeros", "replicate": "replicate"}[padding]
        # style encoder (no normalisation, as MUNIT)
        self.style_stem = _conv(in_channels, ch["style_stem"], 7, pad_mode=pad)
        self.style_down = nn.ModuleList(
            [
                _conv(ch["style_stem"], ch["style_down1"], 4, 2, pad),
                _conv(ch["style_down1"], ch["style_down"], 4, 2, pad),
            ]
        )
        self.style_down.extend(
            _conv(ch["style_down"], ch["style_down"], 4, 2, pad) for _ in range(style_downsample - 2)
        )
        self.style_out = ElasticConv2d(ch["style_down"], style_dim, 1)
        # content encoder (InstanceNorm without affine)
        self.content_stem = _conv(in_channels, ch["content_stem"], 7, pad_mode=pad)
        self.content_stem_norm = create_norm("instance", ch["content_stem"])
        self.content_down1 = _conv(ch["content_stem"], ch["content_down1"], 4, 2, pad)
        self.content_down1_norm = create_norm("instance", ch["content_down1"])
        self.content_down2 = _conv(ch["content_down1"], ch["content"], 4, 2, pad)
        self.content_down2_norm = create_norm("instance", ch["content"])
        self.enc_blocks = nn.ModuleList(
            ContentResBlock(ch["content"], ch["enc_hidden"], pad) for _ in range(num_res)
        )
        # decoder: AdaIN residual blocks, then upsample + 5×5 conv + layer norm twice, then 7×7 conv
        self.dec_blocks = nn.ModuleList(
            AdainResBlock(ch["content"], ch["dec_hidden"], pad) for _ in range(num_res)
        )
        self.up1 = _conv(ch["content"], ch["up1"], 5, pad_mode=pad)
        self.up1_norm = ElasticLayerNorm2d(ch["up1"])
        self.up2 = _conv(ch["up1"], ch["up2"], 5, pad_mode=pad)
        self.up2_norm = ElasticLayerNorm2d(ch["up2"])
        self.head = _conv(ch["up2"], out_channels, 7, pad_mode=pad)
        # MLP from the style code to every AdaIN layer's scale and shift
        self.mlp = nn.ModuleList([ElasticLinear(style_dim, mlp_dim), ElasticLinear(mlp_dim, mlp_dim)])
        widths = [w for _ in range(num_res) for w in (ch["dec_hidden"], ch["content"])]
        self.adain_shift = nn.ModuleList(ElasticLinear(mlp_dim, w) for w in widths)
        self.adain_scale = nn.ModuleList(ElasticLinear(mlp_dim, w) for w in widths)

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        return MUNIT_GROUPS

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        return {"content": self.channels(arch)["content"], "style": self.options["style_dim"]}

    def encode_style(self, image: torch.Tensor, ch: dict[str, int] | None = None) -> torch.Tensor:
        """Style code (N × style_dim) of ``image``."""
        ch = ch or self.channels()
        h = F.relu(self.style_stem(image, ch["style_stem"]))
        outs = [ch["style_down1"]] + [ch["style_down"]] * (len(self.style_down) - 1)
        for conv, c in zip(self.style_down, outs):
            h = F.relu(conv(h, c))
        h = F.adaptive_avg_pool2d(h, 1)
        return self.style_out(h).flatten(1)

    def encode_content(self, x: torch.Tensor, ch: dict[str, int] | None = None) -> torch.Tensor:
        ch = ch or self.channels()
        h = F.relu(self.content_stem_norm(self.content_stem(x, ch["content_stem"])))
        h = F.relu(self.content_down1_norm(self.content_down1(h, ch["content_down1"])))
        h = F.relu(self.content_down2_norm(self.content_down2(h, ch["content"])))
        for block in self.enc_blocks:
            h = block(h, ch["enc_hidden"])
        return h

    def decode(
        self, content: torch.Tensor, style: torch.Tensor, ch: dict[str, int] | None = None
    ) -> torch.Tensor:
        ch = ch or self.channels()
        h = style
        for layer in self.mlp:
            h = F.relu(layer(h))
        widths = [w for _ in self.dec_blocks for w in (ch["dec_hidden"], ch["content"])]
        shifts = [head(h, w) for head, w in zip(self.adain_shift, widths)]
        scales = [head(h, w) for head, w in zip(self.adain_scale, widths)]
        x = content
        for i, block in enumerate(self.dec_blocks):
            p = [scales[2 * i], shifts[2 * i], scales[2 * i + 1], shifts[2 * i + 1]]
            x = block(x, ch["dec_hidden"], p)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.up1_norm(self.up1(x, ch["up1"])))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.up2_norm(self.up2(x, ch["up2"])))
        return torch.tanh(self.head(x))

    def _forward(self, x, ch, feats, want, style=None, style_image=None):
        if style is None:
            style = self.encode_style(x if style_image is None else style_image, ch)
        content = self.encode_content(x, ch)
        feats["content"] = content
        feats["style"] = style
        return self.decode(content, style, ch)

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        h, w = size or self.default_size
        g = torch.Generator().manual_seed(0)
        return torch.rand(batch, self.options["in_channels"], h, w, generator=g) * 2 - 1
