"""The MUNIT generator (Huang et al.): content encoder, style encoder, MLP, AdaIN decoder.

Architecture string (10 numbers at the scale of ``base_width``), as GAN Compression's
SubMobileAdaINGenerator reads it::

    style _ content_stem _ content_down1(×2) _ content(×4) _ enc_hidden1(×4) _ enc_hidden2(×4)
    _ dec_hidden1(×4) _ dec_hidden2(×4) _ up1(×2) _ up2

``style`` is the style encoder's one width (its stem, then ×2, then ×4 for the remaining
downsamplings); ``content`` is the content-code width (the residual trunk of encoder and decoder);
``enc_hidden1/2`` and ``dec_hidden1/2`` are the inner widths of the first and second half of the
encoder's and decoder's residual blocks (a pair of blocks each at the default four).

``separable=True`` is the mobile family: the residual blocks' and the upsampling convolutions are
separable (depthwise k×k → InstanceNorm → pointwise 1×1), as in GAN Compression's
SuperMobile/SubMobileAdaINGenerator. The released edges2shoes string ``16_16_16_24_56_16_40_40_32_24``
then builds the official network (1.10M parameters, 2.63G MACs).

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
from ..layers import ElasticConv2d, ElasticLayerNorm2d, ElasticLinear, ElasticSeparableConv2d, create_norm
from .base import Generator
from .registry import GENERATORS

MUNIT_GROUPS = (
    WidthGroup("style", 1, "style encoder: stem width (×2 and ×4 after its downsamplings)"),
    WidthGroup("content_stem", 1, "content encoder 7×7 stem output"),
    WidthGroup("content_down1", 2, "content encoder first downsampling output"),
    WidthGroup("content", 4, "content code = residual trunk width"),
    WidthGroup("enc_hidden1", 4, "inner width of the first half of the encoder's residual blocks"),
    WidthGroup("enc_hidden2", 4, "inner width of the second half of the encoder's residual blocks"),
    WidthGroup("dec_hidden1", 4, "inner width of the first half of the decoder's residual blocks"),
    WidthGroup("dec_hidden2", 4, "inner width of the second half of the decoder's residual blocks"),
    WidthGroup("up1", 2, "first upsampling conv output"),
    WidthGroup("up2", 1, "second upsampling conv output (feeds the 7×7 head)"),
)


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad_mode: str = "reflect") -> ElasticConv2d:
    return ElasticConv2d(
        cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 1, padding_mode=pad_mode
    )


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance norm: per-sample, per-channel normalisation with style-given scale and shift."""
    return F.instance_norm(x, eps=eps) * scale[:, :, None, None] + shift[:, :, None, None]


def _block_conv(cin: int, cout: int, k: int, pad_mode: str, separable: bool) -> nn.Module:
    """A stride-1 k×k conv of a residual block or an upsampling stage: plain, or separable (mobile)."""
    if separable:
        return ElasticSeparableConv2d(
            cin, cout, k, padding=(k - 1) // 2, padding_mode=pad_mode, norm="instance", norm_affine=False
        )
    return _conv(cin, cout, k, pad_mode=pad_mode)


class ContentResBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, pad_mode: str, separable: bool = False) -> None:
        super().__init__()
        self.conv1 = _block_conv(dim, hidden, 3, pad_mode, separable)
        self.norm1 = create_norm("instance", hidden)
        self.conv2 = _block_conv(hidden, dim, 3, pad_mode, separable)
        self.norm2 = create_norm("instance", dim)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x, hidden)))
        return x + self.norm2(self.conv2(h, x.shape[1]))


class AdainResBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, pad_mode: str, separable: bool = False) -> None:
        super().__init__()
        self.conv1 = _block_conv(dim, hidden, 3, pad_mode, separable)
        self.conv2 = _block_conv(hidden, dim, 3, pad_mode, separable)

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
        separable: bool = False,
    ) -> None:
        if num_downsample != 2:
            raise ConfigError(
                f"munit.num_downsample must be 2 (the 10-number architecture), got {num_downsample}"
            )
        if style_downsample < 2:
            raise ConfigError(f"munit.style_downsample must be at least 2, got {style_downsample}")
        if num_res < 2:
            raise ConfigError(f"munit.num_res must be at least 2 (two hidden-width groups), got {num_res}")
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
            separable=separable,
        )
        super().__init__(arch, options)
        ch = self.arch.channels(self.width_groups)
        pad = {"reflect": "reflect", "zero": "zeros", "replicate": "replicate"}[padding]
        # style encoder (no normalisation, as MUNIT)
        s = ch["style"]
        self.style_stem = _conv(in_channels, s, 7, pad_mode=pad)
        self.style_down = nn.ModuleList([_conv(s, 2 * s, 4, 2, pad), _conv(2 * s, 4 * s, 4, 2, pad)])
        self.style_down.extend(_conv(4 * s, 4 * s, 4, 2, pad) for _ in range(style_downsample - 2))
        self.style_out = ElasticConv2d(4 * s, style_dim, 1)
        # content encoder (InstanceNorm without affine)
        self.content_stem = _conv(in_channels, ch["content_stem"], 7, pad_mode=pad)
        self.content_stem_norm = create_norm("instance", ch["content_stem"])
        self.content_down1 = _conv(ch["content_stem"], ch["content_down1"], 4, 2, pad)
        self.content_down1_norm = create_norm("instance", ch["content_down1"])
        self.content_down2 = _conv(ch["content_down1"], ch["content"], 4, 2, pad)
        self.content_down2_norm = create_norm("instance", ch["content"])
        self.enc_blocks = nn.ModuleList(
            ContentResBlock(ch["content"], ch[self.block_group("enc", i)], pad, separable)
            for i in range(num_res)
        )
        # decoder: AdaIN residual blocks, then upsample + 5×5 conv + layer norm twice, then 7×7 conv
        self.dec_blocks = nn.ModuleList(
            AdainResBlock(ch["content"], ch[self.block_group("dec", i)], pad, separable)
            for i in range(num_res)
        )
        self.up1 = _block_conv(ch["content"], ch["up1"], 5, pad, separable)
        self.up1_norm = ElasticLayerNorm2d(ch["up1"])
        self.up2 = _block_conv(ch["up1"], ch["up2"], 5, pad, separable)
        self.up2_norm = ElasticLayerNorm2d(ch["up2"])
        self.head = _conv(ch["up2"], out_channels, 7, pad_mode=pad)
        # MLP from the style code to every AdaIN layer's scale and shift
        self.mlp = nn.ModuleList([ElasticLinear(style_dim, mlp_dim), ElasticLinear(mlp_dim, mlp_dim)])
        widths = self._adain_widths(ch)
        self.adain_shift = nn.ModuleList(ElasticLinear(mlp_dim, w) for w in widths)
        self.adain_scale = nn.ModuleList(ElasticLinear(mlp_dim, w) for w in widths)

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        return MUNIT_GROUPS

    def block_group(self, part: str, index: int) -> str:
        """Width group of residual block ``index`` of ``part`` ('enc' or 'dec'): halves, as officially."""
        return f"{part}_hidden{1 if index < self.options['num_res'] // 2 else 2}"

    def _adain_widths(self, ch: dict[str, int]) -> list[int]:
        n = self.options["num_res"]
        return [w for i in range(n) for w in (ch[self.block_group("dec", i)], ch["content"])]

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        return {"content": self.channels(arch)["content"], "style": self.options["style_dim"]}

    def encode_style(self, image: torch.Tensor, ch: dict[str, int] | None = None) -> torch.Tensor:
        """Style code (N × style_dim) of ``image``."""
        ch = ch or self.channels()
        s = ch["style"]
        h = F.relu(self.style_stem(image, s))
        outs = [2 * s] + [4 * s] * (len(self.style_down) - 1)
        for conv, c in zip(self.style_down, outs):
            h = F.relu(conv(h, c))
        h = F.adaptive_avg_pool2d(h, 1)
        return self.style_out(h).flatten(1)

    def encode_content(self, x: torch.Tensor, ch: dict[str, int] | None = None) -> torch.Tensor:
        ch = ch or self.channels()
        h = F.relu(self.content_stem_norm(self.content_stem(x, ch["content_stem"])))
        h = F.relu(self.content_down1_norm(self.content_down1(h, ch["content_down1"])))
        h = F.relu(self.content_down2_norm(self.content_down2(h, ch["content"])))
        for i, block in enumerate(self.enc_blocks):
            h = block(h, ch[self.block_group("enc", i)])
        return h

    def decode(
        self, content: torch.Tensor, style: torch.Tensor, ch: dict[str, int] | None = None
    ) -> torch.Tensor:
        ch = ch or self.channels()
        h = style
        for layer in self.mlp:
            h = F.relu(layer(h))
        widths = self._adain_widths(ch)
        shifts = [head(h, w) for head, w in zip(self.adain_shift, widths)]
        scales = [head(h, w) for head, w in zip(self.adain_scale, widths)]
        x = content
        for i, block in enumerate(self.dec_blocks):
            p = [scales[2 * i], shifts[2 * i], scales[2 * i + 1], shifts[2 * i + 1]]
            x = block(x, ch[self.block_group("dec", i)], p)
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
