"""CAT's inception-residual generator (Jin et al., CVPR 2021, snap-research/CAT ``inception_9blocks``).

The ResNet generator's stem, two stride-2 convs, two ConvTranspose upsamplers and 7×7 head, with
every residual block replaced by an *inception-residual* block: for each kernel size ``k`` of
``kernel_sizes`` (official: 1, 3, 5) one plain branch (k×k conv → norm → ReLU → k×k conv) and one
depthwise branch (1×1 conv → norm → ReLU → k×k depthwise conv → norm → ReLU → 1×1 conv), all
summed, normalised and added to the block's input::

    y = x + norm(Σ_k res_k(x) + Σ_k dw_k(x))

Every branch has its own inner width (the teacher's: ``4·base_width // reduction``, official
``--channels_reduction_factor 6``: 42 channels at base width 64), so CAT's pruning can pick each
branch's width from its first norm's scales. The widths are data; every group counts real channels
(multiplier 1), so a pruned network records any channel counts. Architecture string::

    stem _ down1 _ trunk _ block1_res1 _ block1_res3 _ block1_res5 _ block1_dw1 _ … _ blockN_dw5 _ up1 _ up2

(``res``/``dw`` per kernel size, in the order of ``kernel_sizes``; 59 numbers for 9 blocks of 3 kernel
sizes). The teacher at base width 64 is ``64_128_256_42_…_42_128_64``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import ArchSpec, WidthGroup
from ..errors import ConfigError
from ..layers import ElasticConv2d, ElasticConvTranspose2d, create_norm, norm_has_bias
from .base import Generator
from .registry import GENERATORS

PADDINGS = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}
OUTER_GROUPS = ("stem", "down1", "trunk")
UP_GROUPS = ("up1", "up2")


class ResBranch(nn.Module):
    """k×k conv → norm → ReLU → (dropout) → k×k conv: the plain branch of an inception block."""

    def __init__(self, trunk: int, hidden: int, k: int, *, norm: str, affine: bool, pad: str, dropout: float):
        super().__init__()
        bias = norm_has_bias(norm, affine)
        self.conv1 = ElasticConv2d(trunk, hidden, k, padding=(k - 1) // 2, padding_mode=pad, bias=bias)
        self.norm1 = create_norm(norm, hidden, affine=affine)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = ElasticConv2d(hidden, trunk, k, padding=(k - 1) // 2, padding_mode=pad, bias=bias)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        return self.conv2(self.dropout(F.relu(self.norm1(self.conv1(x, hidden)))), x.shape[1])


class DwBranch(nn.Module):
    """1×1 conv → norm → ReLU → k×k depthwise conv → norm → ReLU → (dropout) → 1×1 conv."""

    def __init__(self, trunk: int, hidden: int, k: int, *, norm: str, affine: bool, pad: str, dropout: float):
        super().__init__()
        bias = norm_has_bias(norm, affine)
        self.conv1 = ElasticConv2d(trunk, hidden, 1, bias=bias)
        self.norm1 = create_norm(norm, hidden, affine=affine)
        self.depthwise = ElasticConv2d(
            hidden, hidden, k, padding=(k - 1) // 2, padding_mode=pad, groups=hidden, bias=bias
        )
        self.norm2 = create_norm(norm, hidden, affine=affine)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = ElasticConv2d(hidden, trunk, 1, bias=bias)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x, hidden)))
        h = self.dropout(F.relu(self.norm2(self.depthwise(h, hidden))))
        return self.conv2(h, x.shape[1])


class InceptionBlock(nn.Module):
    """``x + norm(Σ res_k(x) + Σ dw_k(x))``: CAT's ``InvertedResidualChannels``."""

    def __init__(
        self,
        trunk: int,
        res: Sequence[int],
        dw: Sequence[int],
        kernel_sizes: Sequence[int],
        *,
        norm: str,
        affine: bool,
        pad: str,
        dropout: float,
    ) -> None:
        super().__init__()
        kw = dict(norm=norm, affine=affine, pad=pad, dropout=dropout)
        self.res = nn.ModuleList(ResBranch(trunk, c, k, **kw) for c, k in zip(res, kernel_sizes))
        self.dw = nn.ModuleList(DwBranch(trunk, c, k, **kw) for c, k in zip(dw, kernel_sizes))
        self.out_norm = create_norm(norm, trunk, affine=affine)

    def forward(self, x: torch.Tensor, res: Sequence[int], dw: Sequence[int]) -> torch.Tensor:
        total = sum(b(x, c) for b, c in zip(self.res, res)) + sum(b(x, c) for b, c in zip(self.dw, dw))
        return x + self.out_norm(total)


@GENERATORS.register("inception")
class InceptionGenerator(Generator):
    """CAT's inception-residual generator; defaults give the official teacher (``inception_9blocks``,
    ``--norm_affine --channels_reduction_factor 6 --kernel_sizes 1 3 5``, InstanceNorm, reflect padding).

    Example:
        >>> teacher = InceptionGenerator()
        >>> tiny = InceptionGenerator(base_width=4, num_blocks=3, kernel_sizes=(1, 3))
    """

    family = "inception"
    feature_points = ("trunk_in", "block3", "block6", "block9")

    def __init__(
        self,
        arch: ArchSpec | str | None = None,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        base_width: int = 64,
        num_blocks: int = 9,
        kernel_sizes: Sequence[int] = (1, 3, 5),
        reduction: int = 6,
        norm: str = "instance",
        norm_affine: bool = True,
        padding: str = "reflect",
        dropout: float = 0.0,
    ) -> None:
        kernels = [int(k) for k in kernel_sizes]
        if not kernels or len(set(kernels)) != len(kernels) or any(k < 1 or k % 2 == 0 for k in kernels):
            raise ConfigError(f"inception.kernel_sizes must be distinct odd sizes, got {list(kernel_sizes)}")
        if padding not in PADDINGS:
            raise ConfigError(f"inception.padding must be one of {sorted(PADDINGS)}, got {padding!r}")
        if num_blocks < 3:
            raise ConfigError(
                f"inception.num_blocks must be at least 3 (three feature points), got {num_blocks}"
            )
        if reduction < 1:
            raise ConfigError(f"inception.reduction must be at least 1, got {reduction}")
        if norm not in ("instance", "batch"):
            raise ConfigError(
                f"inception.norm must be 'instance' or 'batch' (CAT prunes by its scales), got {norm!r}"
            )
        options = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            base_width=base_width,
            num_blocks=num_blocks,
            kernel_sizes=kernels,
            reduction=reduction,
            norm=norm,
            norm_affine=norm_affine,
            padding=padding,
            dropout=dropout,
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
            InceptionBlock(
                ch["trunk"],
                [ch[g] for g in self.branch_groups(i, "res")],
                [ch[g] for g in self.branch_groups(i, "dw")],
                kernels,
                norm=norm,
                affine=norm_affine,
                pad=pad,
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

    # -- widths ------------------------------------------------------------------------------------
    def branch_groups(self, block: int, kind: str) -> list[str]:
        """Width-group names of block ``block``'s ``res`` or ``dw`` branches, in kernel-size order."""
        return [f"block{block + 1}_{kind}{k}" for k in self.options["kernel_sizes"]]

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        outer = (
            WidthGroup("stem", 1, "stem 7×7 conv output"),
            WidthGroup("down1", 1, "first stride-2 conv output"),
            WidthGroup("trunk", 1, "second stride-2 conv output = the blocks' trunk width"),
        )
        branches = tuple(
            WidthGroup(name, 1, f"inner width of a {kind} branch")
            for i in range(self.options["num_blocks"])
            for kind in ("res", "dw")
            for name in self.branch_groups(i, kind)
        )
        up = (
            WidthGroup("up1", 1, "first ConvTranspose output"),
            WidthGroup("up2", 1, "second ConvTranspose output (feeds the 7×7 head)"),
        )
        return outer + branches + up

    def default_arch(self) -> ArchSpec:
        base = self.options["base_width"]
        branch = max(1, 4 * base // self.options["reduction"])
        widths = {"stem": base, "down1": 2 * base, "trunk": 4 * base, "up1": 2 * base, "up2": base}
        return ArchSpec(self.family, tuple(widths.get(g.name, branch) for g in self.width_groups))

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        trunk = self.channels(arch)["trunk"]
        return {name: trunk for name in self.feature_points}

    def _feature_after(self) -> dict[int, str]:
        third = self.options["num_blocks"] // 3
        return {third - 1: "block3", 2 * third - 1: "block6", self.options["num_blocks"] - 1: "block9"}

    # -- forward -----------------------------------------------------------------------------------
    def _forward(self, x, ch, feats, want, **kwargs):
        if kwargs:
            raise ConfigError(f"inception generator takes no extra inputs, got {sorted(kwargs)}")
        h = F.relu(self.stem_norm(self.stem(x, ch["stem"])))
        h = F.relu(self.down1_norm(self.down1(h, ch["down1"])))
        h = F.relu(self.down2_norm(self.down2(h, ch["trunk"])))
        if "trunk_in" in want:
            feats["trunk_in"] = h
        after = self._feature_after()
        for i, block in enumerate(self.blocks):
            res = [ch[g] for g in self.branch_groups(i, "res")]
            dw = [ch[g] for g in self.branch_groups(i, "dw")]
            h = block(h, res, dw)
            if after.get(i) in want:
                feats[after[i]] = h
        h = F.relu(self.up1_norm(self.up1(h, ch["up1"])))
        h = F.relu(self.up2_norm(self.up2(h, ch["up2"])))
        return torch.tanh(self.head(h))

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        h, w = size or self.default_size
        g = torch.Generator().manual_seed(0)
        return torch.rand(batch, self.options["in_channels"], h, w, generator=g) * 2 - 1
