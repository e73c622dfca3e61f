"""OMGD's deeper teachers: the student's family at the student's widths with extra residual blocks.

The official code's ``mobile_deepest_resnet`` and ``unet_deepest_256`` add "expansion" residual
blocks (1×1 to 4× width, 3×3, 1×1 back, 3×3) at every resolution of the student's architecture.
They are teachers only: trained online, never exported, so they are plain modules here rather than
registered families (their MACs and widths are never searched).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...layers import create_norm, norm_has_bias
from ...models import Generator
from ...models.resnet import PADDINGS, ResnetBlock


class ExpansionBlock(nn.Module):
    """x + (pad → 1×1 to 4c → norm → ReLU → 3×3 → norm → ReLU → 1×1 to c → norm → ReLU → pad → 3×3 → norm)."""

    def __init__(self, channels: int, norm: str, norm_affine: bool | None, padding_mode: str = "reflect"):
        super().__init__()
        bias = norm_has_bias(norm, norm_affine)
        wide = 4 * channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, wide, 1, bias=bias),
            create_norm(norm, wide, affine=norm_affine),
            nn.ReLU(True),
            nn.Conv2d(wide, wide, 3, padding=1, padding_mode=padding_mode, bias=bias),
            create_norm(norm, wide, affine=norm_affine),
            nn.ReLU(True),
            nn.Conv2d(wide, channels, 1, bias=bias),
            create_norm(norm, channels, affine=norm_affine),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode, bias=bias),
            create_norm(norm, channels, affine=norm_affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _expansions(
    channels: int, count: int, norm: str, affine: bool | None, pad: str = "reflect"
) -> nn.Sequential:
    return nn.Sequential(*(ExpansionBlock(channels, norm, affine, pad) for _ in range(count)))


class DeepResnet(nn.Module):
    """``mobile_deepest_resnet``: the ResNet generator with expansion blocks after each down- and
    up-sampling conv (each followed by a 3×3 conv, norm, ReLU) and in the middle of the trunk.

    ``channels``: the ResNet width groups' channel counts (``Generator.channels``); ``options``: the
    family's options (norm, padding, separable, number of blocks, image channels).
    """

    def __init__(self, channels: dict[str, int], options: dict, blocks: int = 2) -> None:
        super().__init__()
        norm, affine = options["norm"], options.get("norm_affine")
        pad = PADDINGS[options["padding"]]
        bias = norm_has_bias(norm, affine)
        ch = channels

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias),
                create_norm(norm, cout, affine=affine),
                nn.ReLU(True),
                _expansions(cout, blocks, norm, affine, pad),
                nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
                create_norm(norm, cout, affine=affine),
                nn.ReLU(True),
            ]

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias),
                create_norm(norm, cout, affine=affine),
                nn.ReLU(True),
                _expansions(cout, blocks, norm, affine, pad),
                nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
                create_norm(norm, cout, affine=affine),
                nn.ReLU(True),
            ]

        n = options["num_blocks"]
        trunk = ch["trunk"]
        # the residual blocks keep the student's per-third inner widths
        third = n // 3
        hidden = [ch[f"hidden{min(i // third, 2) + 1}"] if "hidden1" in ch else trunk for i in range(n)]
        res = [
            ResnetBlock(
                trunk,
                hidden[i],
                separable=bool(options.get("separable")),
                norm=norm,
                norm_affine=affine,
                padding_mode=pad,
                dropout=float(options.get("dropout", 0.0)),
            )  # fmt: skip
            for i in range(n)
        ]
        half = n // 2
        layers: list[nn.Module] = [
            nn.Conv2d(options["in_channels"], ch["stem"], 7, padding=3, padding_mode="reflect", bias=bias),
            create_norm(norm, ch["stem"], affine=affine),
            nn.ReLU(True),
            *down(ch["stem"], ch["down1"]),
            *down(ch["down1"], trunk),
            *res[:half],
            _expansions(trunk, blocks, norm, affine, pad),
            *res[half:],
            *up(trunk, ch["up1"]),
            *up(ch["up1"], ch["up2"]),
            nn.Conv2d(ch["up2"], options["out_channels"], 7, padding=3, padding_mode="reflect"),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.model:
            x = layer(x)  # ResnetBlock takes its inner width as an optional second argument
        return x


class DeepUnet(nn.Module):
    """``unet_deepest_256``: the U-Net with expansion blocks after every downsampling conv (but the
    innermost) and after every upsampling conv below the outermost, and before the outermost one."""

    def __init__(self, channels: dict[str, int], options: dict, blocks: int = 2) -> None:
        super().__init__()
        norm, affine = options["norm"], options.get("norm_affine")
        bias = norm_has_bias(norm, affine)
        w = list(channels.values())
        n = options["num_downs"]
        self.n = n
        self.down = nn.ModuleList()
        self.down_extra = nn.ModuleList()
        for i in range(n):
            cin = options["in_channels"] if i == 0 else w[i - 1]
            norm_layer = create_norm(norm, w[i], affine=affine) if 0 < i < n - 1 else nn.Identity()
            self.down.append(
                nn.Sequential(nn.Conv2d(cin, w[i], 4, stride=2, padding=1, bias=bias), norm_layer)
            )
            self.down_extra.append(_expansions(w[i], blocks, norm, affine) if i < n - 1 else nn.Identity())
        self.up = nn.ModuleList()
        self.up_extra = nn.ModuleList()
        for i in range(n):
            cout = options["out_channels"] if i == 0 else w[i - 1]
            cin = w[i] if i == n - 1 else 2 * w[i]
            conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=True if i == 0 else bias)
            if i == 0:
                self.up.append(conv)
                self.up_extra.append(_expansions(cin, blocks, norm, affine))  # before the outermost conv
            else:
                self.up.append(nn.Sequential(conv, create_norm(norm, cout, affine=affine)))
                self.up_extra.append(_expansions(cout, blocks, norm, affine) if i < n - 1 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for i in range(self.n):
            if i > 0:
                h = F.leaky_relu(h, 0.2)
            h = self.down_extra[i](self.down[i](h))
            skips.append(h)
        for i in range(self.n - 1, -1, -1):
            if i < self.n - 1:
                h = torch.cat([skips[i], h], dim=1)
            if i == 0:
                return torch.tanh(self.up[0](F.relu(self.up_extra[0](h))))
            h = self.up_extra[i](self.up[i](F.relu(h)))
        raise AssertionError("unreachable")


DEEP_FAMILIES = ("resnet", "unet")


def deep_teacher(student: Generator, scale: float = 1.0, blocks: int = 2) -> nn.Module:
    """A deeper teacher of ``student``'s family at its widths × ``scale`` (fresh weights)."""
    if student.family not in DEEP_FAMILIES:
        raise ConfigError(
            f"omgd: no deeper teacher for family {student.family!r}; known: {list(DEEP_FAMILIES)}"
        )
    channels = {k: max(1, round(v * scale)) for k, v in student.channels().items()}
    if student.family == "resnet" and student.options.get("layout") == "blocks":
        raise ConfigError("omgd: the deeper ResNet teacher needs the thirds or legacy layout, not blocks")
    cls = DeepResnet if student.family == "resnet" else DeepUnet
    return cls(channels, dict(student.options), blocks)
