"""The CycleGAN / pix2pix ResNet generator, and GAN Compression's separable ("mobile") variant.

Architecture string (GAN Compression, 8 numbers at the scale of ``base_width``)::

    stem _ down1(×2) _ trunk(×4) _ hidden1(×4) _ hidden2(×4) _ hidden3(×4) _ up1(×2) _ up2

``hidden1..3`` are the inner widths of residual blocks 1–3, 4–6 and 7–9 (``layout="thirds"``, GAN
Compression's ``sub_mobile_resnet_9blocks``). ``layout="legacy"`` is its
``legacy_sub_mobile_resnet_9blocks``: only the first block of each third (blocks 1, 4, 7) takes
``hidden1..3``; the other six keep the trunk width.

``layout="blocks"`` gives every residual block its own inner width (GAN Slimming's per-block
widths): ``stem _ down1 _ trunk _ block1 _ … _ blockN _ up1 _ up2`` (the 8-number form is read too,
each third's width going to its blocks).

Both 6-number forms are read and written in the 8-number form: ``stem _ down1 _ trunk _ hidden _ up1
_ up2`` with one hidden width for every block (``thirds``), or for blocks 1, 4 and 7 (``legacy``, the
form of the paper's edges2shoes ``32_32_40_48_16_32``: 699,875 parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import ArchSpec, WidthGroup, as_arch
from ..errors import ConfigError
from ..layers import ElasticConv2d, ElasticConvTranspose2d, ElasticSeparableConv2d, create_norm, norm_has_bias
from .base import Generator
from .registry import GENERATORS

PADDINGS = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}
LAYOUTS = ("thirds", "legacy", "blocks")

RESNET_GROUPS = (
    WidthGroup("stem", 1, "stem 7×7 conv output"),
    WidthGroup("down1", 2, "first stride-2 conv output"),
    WidthGroup("trunk", 4, "second stride-2 conv output = residual trunk width"),
    WidthGroup("hidden1", 4, "inner width of blocks 1-3"),
    WidthGroup("hidden2", 4, "inner width of blocks 4-6"),
    WidthGroup("hidden3", 4, "inner width of blocks 7-9"),
    WidthGroup("up1", 2, "first ConvTranspose output"),
    WidthGroup("up2", 1, "second ConvTranspose output (feeds the 7×7 head)"),
)


class ResnetBlock(nn.Module):
    """conv → norm → ReLU → (dropout) → conv → norm, plus the identity; the inner width is elastic."""

    def __init__(
        self,
        trunk: int,
        hidden: int,
        *,
        separable: bool,
        norm: str,
        norm_affine: bool | None,
        padding_mode: str,
        dropout: float,
    ) -> None:
        super().__init__()
        bias = norm_has_bias(norm, norm_affine)
        if separable:
            kw = dict(
                padding=1, padding_mode=padding_mode, norm=norm, norm_affine=bool(norm_affine), bias=bias
            )
            self.conv1: nn.Module = ElasticSeparableConv2d(trunk, hidden, 3, **kw)
            self.conv2: nn.Module = ElasticSeparableConv2d(hidden, trunk, 3, **kw)
        else:
            self.conv1 = ElasticConv2d(trunk, hidden, 3, padding=1, padding_mode=padding_mode, bias=bias)
            self.conv2 = ElasticConv2d(hidden, trunk, 3, padding=1, padding_mode=padding_mode, bias=bias)
        self.norm1 = create_norm(norm, hidden, affine=norm_affine)
        self.norm2 = create_norm(norm, trunk, affine=norm_affine)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hidden: int | None = None) -> torch.Tensor:
        h = self.dropout(F.relu(self.norm1(self.conv1(x, hidden))))
        return x + self.norm2(self.conv2(h, x.shape[1]))


@GENERATORS.register("resnet")
class ResnetGenerator(Generator):
    """ResNet generator of CycleGAN/pix2pix (Johnson et al.), optionally separable (GAN Compression).

    Defaults give the published teacher: ngf 64, 9 blocks, InstanceNorm without affine (so convs have
    bias), reflect padding, ConvTranspose upsampling, Tanh: 11,378,179 parameters.

    Example:
        >>> teacher = ResnetGenerator()
        >>> student = ResnetGenerator(arch="16_16_32_16_32_32_16_16", separable=True)
    """

    family = "resnet"
    feature_points = ("trunk_in", "block3", "block6", "block9")

    def __init__(
        self,
        arch: ArchSpec | str | None = None,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        base_width: int = 64,
        num_blocks: int = 9,
        separable: bool = False,
        norm: str = "instance",
        norm_affine: bool | None = None,
        padding: str = "reflect",
        dropout: float = 0.0,
        layout: str = "thirds",
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigError(f"resnet.layout must be one of {list(LAYOUTS)}, got {layout!r}")
        if padding not in PADDINGS:
            raise ConfigError(f"resnet.padding must be one of {sorted(PADDINGS)}, got {padding!r}")
        if num_blocks < 3:
            raise ConfigError(f"resnet.num_blocks must be at least 3 (three width groups), got {num_blocks}")
        options = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=base_width,
            num_blocks=num_blocks,
            separable=separable,
            norm=norm,
            norm_affine=norm_affine,
            padding=padding,
            dropout=dropout,
            layout=layout,
        )
        super().__init__(arch, options)
        ch = self.arch.channels(self.width_groups)
        pad = PADDINGS[padding]
        bias = norm_has_bias(norm, norm_affine)
        self.stem = ElasticConv2d(in_channels, ch["stem"], 7, padding=3, padding_mode="reflect", bias=bias)
        self.stem_norm = create_norm(norm, ch["stem"], affine=norm_affine)
        self.down1 = ElasticConv2d(ch["stem"], ch["down1"], 3, stride=2, padding=1, bias=bias)
        self.down1_norm = create_norm(norm, ch["down1"], affine=norm_affine)
        self.down2 = ElasticConv2d(ch["down1"], ch["trunk"], 3, stride=2, padding=1, bias=bias)
        self.down2_norm = create_norm(norm, ch["trunk"], affine=norm_affine)
        self.blocks = nn.ModuleList(
            ResnetBlock(
                ch["trunk"],
                ch[self.block_group(i)],
                separable=separable,
                norm=norm,
                norm_affine=norm_affine,
                padding_mode=pad,
                dropout=dropout,
            )
            for i in range(num_blocks)
        )
        convt = dict(kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias)
        self.up1 = ElasticConvTranspose2d(ch["trunk"], ch["up1"], **convt)
        self.up1_norm = create_norm(norm, ch["up1"], affine=norm_affine)
        self.up2 = ElasticConvTranspose2d(ch["up1"], ch["up2"], **convt)
        self.up2_norm = create_norm(norm, ch["up2"], affine=norm_affine)
        self.head = ElasticConv2d(ch["up2"], out_channels, 7, padding=3, padding_mode="reflect")

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        if self.options.get("layout") != "blocks":
            return RESNET_GROUPS
        n = self.options["num_blocks"]
        blocks = tuple(
            WidthGroup(f"block{i + 1}", 4, f"inner width of residual block {i + 1}") for i in range(n)
        )
        return RESNET_GROUPS[:3] + blocks + RESNET_GROUPS[6:]

    def parse_arch(self, arch: ArchSpec | str | None) -> ArchSpec:
        spec = as_arch(self.family, arch, self.default_arch())
        if len(spec.widths) == 6:  # the older form: one hidden width for every block
            w = spec.widths
            spec = ArchSpec(self.family, (w[0], w[1], w[2], w[3], w[3], w[3], w[4], w[5]))
        n = self.options["num_blocks"]
        if self.options.get("layout") == "blocks" and len(spec.widths) == 8 and n + 5 != 8:
            w = spec.widths  # the 8-number form: each third's hidden width to its blocks
            third = n // 3
            hidden = [w[3 + min(i // third, 2)] for i in range(n)]
            spec = ArchSpec(self.family, (*w[:3], *hidden, *w[6:]))
        spec.check(self.width_groups)
        return spec

    def block_group(self, index: int) -> str:
        """Width group of residual block ``index`` (blocks split in three nearly equal thirds).

        In the legacy layout only the first block of each third has its own group; the others are
        at the trunk width.
        """
        if self.options.get("layout") == "blocks":
            return f"block{index + 1}"
        third = self.options["num_blocks"] // 3
        part = min(index // third, 2)
        if self.options.get("layout") == "legacy" and index != part * third:
            return "trunk"
        return f"hidden{part + 1}"

    def _feature_after(self) -> dict[int, str]:
        third = self.options["num_blocks"] // 3
        return {third - 1: "block3", 2 * third - 1: "block6", self.options["num_blocks"] - 1: "block9"}

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        trunk = self.channels(arch)["trunk"]
        return {name: trunk for name in self.feature_points}

    def _forward(self, x, ch, feats, want, **kwargs):
        if kwargs:
            raise ConfigError(f"resnet generator takes no extra inputs, got {sorted(kwargs)}")
        h = F.relu(self.stem_norm(self.stem(x, ch["stem"])))
        h = F.relu(self.down1_norm(self.down1(h, ch["down1"])))
        h = F.relu(self.down2_norm(self.down2(h, ch["trunk"])))
        if "trunk_in" in want:
            feats["trunk_in"] = h
        after = self._feature_after()
        for i, block in enumerate(self.blocks):
            h = block(h, ch[self.block_group(i)])
            if after.get(i) in want:
                feats[after[i]] = h
        h = F.relu(self.up1_norm(self.up1(h, ch["up1"])))
        h = F.relu(self.up2_norm(self.up2(h, ch["up2"])))
        return torch.tanh(self.head(h))

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        h, w = size or self.default_size
        g = torch.Generator().manual_seed(0)
        return torch.rand(batch, self.options["in_channels"], h, w, generator=g) * 2 - 1
