"""Width-elastic building blocks.

Each layer here is the ordinary torch layer (same parameters, same state-dict keys, same ONNX export)
whose ``forward`` can also compute with only the first ``k`` channels of its shared weights. This is
what lets one generator class serve as teacher, once-for-all supernet and exported subnet: the active
widths are passed explicitly as arguments, never stored on the module.

Input widths are always read from the incoming tensor; output widths are an argument (``None`` means
the layer's full width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_width(layer: nn.Module, what: str, active: int, full: int) -> None:
    if active > full:
        raise ValueError(f"{type(layer).__name__}: active {what} {active} exceeds its full width {full}")


class ElasticConv2d(nn.Conv2d):
    """``nn.Conv2d`` that can run on the first channels of its weight.

    Depthwise convolutions (``groups == in_channels == out_channels``) stay depthwise at any width.
    """

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def forward(self, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:  # type: ignore[override]
        in_channels = x.shape[1]
        if self.depthwise:
            _check_width(self, "channels", in_channels, self.in_channels)
            weight = self.weight[:in_channels]
            bias = None if self.bias is None else self.bias[:in_channels]
            return self._run(x, weight, bias, groups=in_channels)
        if self.groups != 1:
            if in_channels != self.in_channels or out_channels not in (None, self.out_channels):
                raise ValueError("grouped (non-depthwise) convolutions are not width-elastic")
            return self._run(x, self.weight, self.bias, groups=self.groups)
        out_channels = self.out_channels if out_channels is None else out_channels
        _check_width(self, "in_channels", in_channels, self.in_channels)
        _check_width(self, "out_channels", out_channels, self.out_channels)
        weight = self.weight[:out_channels, :in_channels]
        bias = None if self.bias is None else self.bias[:out_channels]
        return self._run(x, weight, bias, groups=1)

    def _run(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
    ) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


def segment_index(full: tuple[int, ...], active: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Indices of the first ``active[j]`` channels of each concatenated segment of widths ``full``."""
    if len(full) != len(active):
        raise ValueError(f"input has {len(active)} concatenated segments, the layer expects {len(full)}")
    parts, start = [], 0
    for f, a in zip(full, active):
        if a > f:
            raise ValueError(f"segment width {a} exceeds its full width {f}")
        parts.append(torch.arange(start, start + a, device=device))
        start += f
    return torch.cat(parts)


class ElasticConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (weight laid out in × out) on its first channels.

    ``in_splits`` declares an input that is a concatenation of several tensors (a U-Net skip and the
    upsampled path): a narrower input then takes the first channels of *each* segment, which keeps
    the supernet and the extracted subnet consistent.
    """

    def __init__(self, *args, in_splits: tuple[int, ...] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if in_splits is not None and sum(in_splits) != self.in_channels:
            raise ValueError(f"in_splits {in_splits} do not add up to in_channels {self.in_channels}")
        self.in_splits = None if in_splits is None else tuple(in_splits)

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        out_channels: int | None = None,
        in_segments: tuple[int, ...] | None = None,
    ) -> torch.Tensor:
        if self.groups != 1:
            raise ValueError("grouped transposed convolutions are not width-elastic")
        in_channels = x.shape[1]
        out_channels = self.out_channels if out_channels is None else out_channels
        _check_width(self, "in_channels", in_channels, self.in_channels)
        _check_width(self, "out_channels", out_channels, self.out_channels)
        weight = self.weight
        if self.in_splits is not None and in_channels != self.in_channels:
            if in_segments is None or sum(in_segments) != in_channels:
                raise ValueError("a narrower concatenated input needs in_segments giving each part's width")
            weight = weight.index_select(0, segment_index(self.in_splits, tuple(in_segments), x.device))
        weight = weight[:in_channels, :out_channels]
        bias = None if self.bias is None else self.bias[:out_channels]
        return F.conv_transpose2d(
            x, weight, bias, self.stride, self.padding, self.output_padding, 1, self.dilation
        )


class ElasticLinear(nn.Linear):
    """``nn.Linear`` on its first rows/columns."""

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:  # type: ignore[override]
        in_features = x.shape[-1]
        out_features = self.out_features if out_features is None else out_features
        _check_width(self, "in_features", in_features, self.in_features)
        _check_width(self, "out_features", out_features, self.out_features)
        bias = None if self.bias is None else self.bias[:out_features]
        return F.linear(x, self.weight[:out_features, :in_features], bias)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose affine parameters and running statistics are sliced to the input width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        _check_width(self, "channels", c, self.num_features)
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        momentum = 0.0 if self.momentum is None else self.momentum
        return F.batch_norm(
            x,
            None if self.running_mean is None else self.running_mean[:c],
            None if self.running_var is None else self.running_var[:c],
            None if self.weight is None else self.weight[:c],
            None if self.bias is None else self.bias[:c],
            use_batch_stats,
            momentum,
            self.eps,
        )


class ElasticInstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` whose optional affine parameters are sliced to the input width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        _check_width(self, "channels", c, self.num_features)
        if self.track_running_stats:
            return super().forward(x)
        weight = self.weight[:c] if self.affine else None
        bias = self.bias[:c] if self.affine else None
        h, w = x.shape[-2:]
        if type(h) is int and type(w) is int and h * w == 1:
            # one element per channel normalises to exactly 0; torch refuses the 1×1 map (the
            # separable SPADE / MUNIT convs meet it in tiny networks)
            out = x * 0.0  # keeps the graph: the gradient is exactly 0, as it is for the true norm
            return out if bias is None else out + bias.view(1, -1, 1, 1)
        return F.instance_norm(x, None, None, weight, bias, True, 0.0, self.eps)


class ElasticLayerNorm2d(nn.Module):
    """MUNIT's layer norm: one mean/std over C×H×W per sample, then a per-channel affine.

    Written by hand because ``nn.LayerNorm`` normalises over trailing dims with element-wise
    (not per-channel) affine parameters, and MUNIT uses the unbiased std with eps added to it.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        _check_width(self, "channels", c, self.num_features)
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        std = flat.std(dim=1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        if self.affine:
            x = x * self.gamma[:c].view(1, -1, 1, 1) + self.beta[:c].view(1, -1, 1, 1)
        return x


class ElasticSeparableConv2d(nn.Module):
    """GAN Compression's separable conv: depthwise k×k → norm → pointwise 1×1.

    The depthwise part follows the input width; the pointwise output width is elastic.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int = 0,
        padding_mode: str = "zeros",
        norm: str = "instance",
        norm_affine: bool = False,
        bias: bool = True,
    ) -> None:
        from .norms import create_norm

        super().__init__()
        self.depthwise = ElasticConv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=in_channels,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.norm = create_norm(norm, in_channels, affine=norm_affine)
        self.pointwise = ElasticConv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)), out_channels)
