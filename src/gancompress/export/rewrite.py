"""The deploy form of a generator, and exact speed rewrites applied to it.

A :class:`~gancompress.models.Generator` is width-elastic: every layer slices its weights to the
width of the incoming tensor. That is what makes it a once-for-all supernet, but a tracer (ONNX,
TorchScript) sees those slices as shape-dependent ``Slice`` nodes, and the ONNX exporter then cannot
tell the channel count of an InstanceNorm. A deployed network runs at one width only, so
:func:`deploy_module` swaps each elastic layer for a fixed-width one holding the same tensors: the
same function, a static graph.

On top of the deploy form, :func:`apply_rewrites` applies function-preserving rewrites that make small
networks faster on a CPU (each is mathematically exact; the outputs differ by float rounding only,
and every rewrite has a parity test):

``convt_pixelshuffle``
    A stride-``s`` ConvTranspose2d becomes one convolution on the *input* grid that computes all
    ``s²`` output phases at once, followed by a pixel shuffle (ONNX ``DepthToSpace``). CPU runtimes
    have fast, fusable convolutions but slow transposed ones (col2im scatter, no NCHWc kernel, no
    int8 kernel in ONNX Runtime), so this trades a few zero taps for a fast path.
``fold_norm_bias``
    A conv whose output goes straight into an InstanceNorm has a bias the norm subtracts again; it
    is dropped (one add per element less). Applied where the model's structure guarantees it.
``space_to_depth``
    A stride-1 conv with a kernel of at least 5 and fewer than 16 output channels (the ResNet's
    7×7 head, 16 → 3 channels) runs on a 2× coarser grid with 4× the channels (see
    :class:`SpaceToDepthConv2d`).
``instance_norm_primitives``
    InstanceNorm written as mean, subtract, multiply and ``rsqrt`` (:class:`PrimitiveInstanceNorm2d`).
    ExecuTorch's XNNPACK delegate has no group/instance-norm kernel: left as one op, every norm falls
    out of the delegate into ExecuTorch's slow portable kernels and cuts the graph into pieces; the
    primitives are all XNNPACK operators, so the whole network runs in one delegate.
``reflect_pad_slices``
    Reflection padding written as one-pixel slices concatenated around the input
    (:func:`reflect_pad_slices`): bit-exact, and built from slice and concatenation, which XNNPACK
    has, where ``reflection_pad2d`` (decomposed by ``torch.export`` into index arithmetic) is not.

Which rewrites pay depends on the runtime (:data:`RUNTIME_REWRITES`): OpenVINO has a fast
transposed convolution, so ``convt_pixelshuffle`` only adds work there.

Example:
    >>> g = create_generator("resnet", arch="16_16_32_16_32_32_16_16", separable=True).eval()
    >>> fast = apply_rewrites(deploy_module(g), ("convt_pixelshuffle",))
    >>> torch.testing.assert_close(fast(x), g(x), atol=1e-5, rtol=1e-4)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..layers.elastic import (
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLayerNorm2d,
    ElasticLinear,
)
from ..models import Generator

REWRITES = (
    "convt_pixelshuffle",
    "fold_norm_bias",
    "space_to_depth",
    "instance_norm_primitives",
    "reflect_pad_slices",
)
#: rewrites the export and latency paths apply unless told otherwise
DEFAULT_REWRITES = ("convt_pixelshuffle", "fold_norm_bias", "space_to_depth")
#: the rewrites measured fastest per runtime (bench/latency_table.py with --rewrites, see
#: docs/benchmarks.md); the latency harness exports one graph per set. OpenVINO's native
#: ConvTranspose beats the pixel-shuffle form, whose zero taps add 78% to the upsampling MACs.
RUNTIME_REWRITES = {
    "torch": DEFAULT_REWRITES,
    "onnxruntime": DEFAULT_REWRITES,
    "openvino": ("fold_norm_bias", "space_to_depth"),
    # chosen so that the XNNPACK delegate takes the whole graph (the norms and reflection pads
    # otherwise run in portable kernels between 40-odd delegate calls); not yet timed against others
    "executorch": DEFAULT_REWRITES + ("instance_norm_primitives", "reflect_pad_slices"),
    # ncnn has native InstanceNorm, reflection Padding and Deconvolution layers, and no batch axis:
    # the 6-D reshapes of the pixel-shuffle rewrites do not map onto its 4-D blobs
    "ncnn": ("fold_norm_bias",),
    "coreml": ("fold_norm_bias",),
}


# -- fixed-width layers: the same tensors, no width slicing ---------------------------------------
def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting()


class FixedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that accepts (and ignores) the width arguments a Generator passes its layers."""

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:  # type: ignore[override]
        return self._conv_forward(x, self.weight, self.bias)


class FixedConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that ignores width arguments."""

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:  # type: ignore[override]
        return F.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )


class FixedLinear(nn.Linear):
    """``nn.Linear`` that ignores width arguments."""

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x, self.weight, self.bias)


class FixedInstanceNorm2d(nn.Module):
    """InstanceNorm (batch statistics always, as every generator here uses it).

    In PyTorch it runs as ``group_norm`` with one group per channel: the same function (per sample
    and channel mean and biased variance over H×W, the same eps), but ATen's group-norm kernel is
    about 6× faster on a CPU than ``instance_norm`` (which reshapes into a batch norm) and keeps
    channels-last tensors channels-last, where ``instance_norm`` is slower still. Exported graphs
    keep ONNX's ``InstanceNormalization``, which runtimes implement directly.
    """

    def __init__(self, num_features: int, eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = None if weight is None else nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


class FixedLayerNorm2d(nn.Module):
    """MUNIT's layer norm (unbiased std, eps added to the std) with unsliced affine parameters."""

    def __init__(self, source: ElasticLayerNorm2d) -> None:
        super().__init__()
        self.eps = source.eps
        self.affine = source.affine
        if source.affine:
            self.gamma = nn.Parameter(source.gamma.detach().clone().view(1, -1, 1, 1))
            self.beta = nn.Parameter(source.beta.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        std = flat.std(dim=1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        if self.affine:
            x = x * self.gamma + self.beta
        return x


def _fixed_conv(m: ElasticConv2d) -> FixedConv2d:
    out = FixedConv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        bias=m.bias is not None,
        padding_mode=m.padding_mode,
    )
    out.load_state_dict(m.state_dict())
    return out


def _fixed_convt(m: ElasticConvTranspose2d) -> FixedConvTranspose2d:
    out = FixedConvTranspose2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        output_padding=m.output_padding,
        groups=m.groups,
        bias=m.bias is not None,
        dilation=m.dilation,
    )
    out.load_state_dict({k: v for k, v in m.state_dict().items()})
    return out


def _fixed_linear(m: ElasticLinear) -> FixedLinear:
    out = FixedLinear(m.in_features, m.out_features, bias=m.bias is not None)
    out.load_state_dict(m.state_dict())
    return out


def _swap(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def fixed_generator(generator: Generator) -> Generator:
    """A copy of ``generator`` (eval mode) whose elastic layers are fixed-width layers with the same tensors.

    Spectral norm is folded into the weights first. The copy is still a ``Generator`` (same
    ``forward``), but only runs at its own widths.
    """
    if not isinstance(generator, Generator):
        raise ConfigError(f"expected a gancompress Generator, got {type(generator).__name__}")
    g = copy.deepcopy(generator).eval()
    if any(parametrize.is_parametrized(m) for m in g.modules()):
        remove = getattr(g, "remove_spectral_norm", None)
        if remove is None:
            raise ConfigError(f"{g.family}: parametrized weights that cannot be folded for export")
        remove()
    for name, m in list(g.named_modules()):
        if not name:
            continue
        if isinstance(m, ElasticConv2d):
            _swap(g, name, _fixed_conv(m))
        elif isinstance(m, ElasticConvTranspose2d):
            _swap(g, name, _fixed_convt(m))
        elif isinstance(m, ElasticLinear):
            _swap(g, name, _fixed_linear(m))
        elif isinstance(m, ElasticInstanceNorm2d) and not m.track_running_stats:
            _swap(
                g,
                name,
                FixedInstanceNorm2d(
                    m.num_features, m.eps, m.weight if m.affine else None, m.bias if m.affine else None
                ),
            )
        elif isinstance(m, ElasticLayerNorm2d):
            _swap(g, name, FixedLayerNorm2d(m))
    return g.eval()


# -- the deploy wrappers: one plain forward with the family's inputs ------------------------------
class ImageToImage(nn.Module):
    """``forward(input) -> image`` for the resnet, unet and spade families (spade: input = label map)."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)


class ContentStyleToImage(nn.Module):
    """MUNIT with an explicit style code: ``forward(content_image, style) -> image``."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g = self.generator
        return g.decode(g.encode_content(x), style)  # type: ignore[operator]


def input_names(family: str) -> tuple[str, ...]:
    """Names of the deploy module's inputs, as they appear in exported graphs."""
    return {"munit": ("input", "style"), "spade": ("label",)}.get(family, ("input",))


def example_inputs(
    generator: Generator, size: tuple[int, int] | None = None, batch: int = 1
) -> tuple[torch.Tensor, ...]:
    """Inputs of the deploy module: the image (or label map), plus a style code for MUNIT."""
    x = generator.example_input(size, batch)
    if generator.family == "munit":
        gen = torch.Generator().manual_seed(1)
        return (x, torch.randn(batch, generator.options["style_dim"], generator=gen))
    return (x,)


def deploy_module(generator: Generator) -> nn.Module:
    """The network a runtime executes: fixed widths, eval mode, the family's explicit inputs.

    Example:
        >>> m = deploy_module(load_generator("runs/demo/teacher"))
        >>> m(torch.rand(1, 3, 64, 64) * 2 - 1).shape     # torch.Size([1, 3, 64, 64])
    """
    g = fixed_generator(generator)
    wrapper = ContentStyleToImage(g) if g.family == "munit" else ImageToImage(g)
    return wrapper.eval()


# -- speed rewrites -------------------------------------------------------------------------------
class _SpaceToDepthOp(torch.autograd.Function):
    """ONNX ``SpaceToDepth`` as one graph node (the exporter otherwise writes Reshape/Transpose/Reshape)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, block: int) -> torch.Tensor:  # type: ignore[override]
        return _space_to_depth_torch(x, block)

    @staticmethod
    def symbolic(g, x, block: int):  # noqa: ANN001, ANN205 - the exporter's graph API
        return g.op("SpaceToDepth", x, blocksize_i=block)


class _DepthToSpaceOp(torch.autograd.Function):
    """ONNX ``DepthToSpace`` in DCR (blocks-first) mode as one graph node."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, block: int) -> torch.Tensor:  # type: ignore[override]
        return _depth_to_space_torch(x, block)

    @staticmethod
    def symbolic(g, x, block: int):  # noqa: ANN001, ANN205 - the exporter's graph API
        return g.op("DepthToSpace", x, blocksize_i=block, mode_s="DCR")


def _space_to_depth_torch(x: torch.Tensor, b: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return (
        x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4).reshape(n, b * b * c, h // b, w // b)
    )


def _depth_to_space_torch(x: torch.Tensor, b: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return (
        x.reshape(n, b, b, c // (b * b), h, w)
        .permute(0, 3, 4, 1, 5, 2)
        .reshape(n, c // (b * b), h * b, w * b)
    )


def space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    """ONNX ``SpaceToDepth``: channel ``(i·block + j)·C + c`` of the output holds pixel (i, j) of each
    ``block``×``block`` cell of channel ``c`` (blocks first, unlike ``pixel_unshuffle``'s channels first).

    Blocks-first order is what runtimes with channels-last (NHWC) layouts move fastest: each output
    pixel is ``block²`` contiguous runs of C channels. Exported as one ``SpaceToDepth`` node.
    """
    if torch.onnx.is_in_onnx_export():
        return _SpaceToDepthOp.apply(x, block)
    return _space_to_depth_torch(x, block)


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """ONNX ``DepthToSpace`` in DCR mode, the inverse of :func:`space_to_depth`; one node when exported."""
    if torch.onnx.is_in_onnx_export():
        return _DepthToSpaceOp.apply(x, block)
    return _depth_to_space_torch(x, block)


class PixelShuffleConvTranspose2d(nn.Module):
    """A stride-``s`` transposed convolution computed as one conv on the input grid + pixel shuffle.

    Output pixel ``o = s·m + r`` of a ConvTranspose gathers ``x[m - d] · w[s·d + r + p]`` over the
    kernel taps of phase ``r``. Stacking the ``s²`` phases as output channels turns this into an
    ordinary correlation with a small kernel over offsets ``e = -d`` (zero where a phase has no tap),
    whose output a pixel shuffle interleaves back onto the fine grid. Valid when the ConvTranspose
    output is exactly ``s`` times its input (true for k3/p1/op1 and k4/p1/op0 at stride 2). The phases
    are stacked blocks first (:func:`depth_to_space`, ONNX ``DepthToSpace`` in DCR mode).
    """

    def __init__(self, m: nn.ConvTranspose2d) -> None:
        super().__init__()
        if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.stride[0] != m.stride[1]:
            raise ConfigError(
                "convt_pixelshuffle supports square-stride, ungrouped, undilated ConvTranspose2d"
            )
        s = m.stride[0]
        taps = []  # per dimension: {phase r: [(offset e, kernel index t)]}
        pads = []
        for dim in (0, 1):
            k, p, op = m.kernel_size[dim], m.padding[dim], m.output_padding[dim]
            # output length (L-1)s - 2p + k + op must be s·L for every L: k + op == 2p + s
            if k + op != 2 * p + s:
                raise ConfigError(
                    f"convt_pixelshuffle: ConvTranspose2d(k={k}, s={s}, p={p}, output_padding={op}) "
                    "does not scale its input exactly by its stride"
                )
            phase_taps: dict[int, list[tuple[int, int]]] = {}
            for r in range(s):
                phase_taps[r] = [(-((t - r - p) // s), t) for t in range(k) if (t - r - p) % s == 0]
            offsets = [e for lst in phase_taps.values() for e, _ in lst]
            lo, hi = min(offsets), max(offsets)
            if lo > 0:
                raise ConfigError("convt_pixelshuffle: padding larger than the kernel reach is not supported")
            taps.append(phase_taps)
            pads.append((lo, hi))
        (lo_h, hi_h), (lo_w, hi_w) = pads
        kh, kw = hi_h - lo_h + 1, hi_w - lo_w + 1
        cin, cout = m.in_channels, m.out_channels
        w = m.weight.detach()  # (cin, cout, k, k)
        weight = torch.zeros(s * s * cout, cin, kh, kw, dtype=w.dtype)
        for rh in range(s):
            for rw in range(s):
                rows = (rh * s + rw) * cout + torch.arange(cout)  # DepthToSpace DCR channel order
                for eh, th in taps[0][rh]:
                    for ew, tw in taps[1][rw]:
                        weight[rows, :, eh - lo_h, ew - lo_w] = w[:, :, th, tw].t()
        self.stride = s
        self.weight = nn.Parameter(weight)
        self.bias = None if m.bias is None else nn.Parameter(m.bias.detach().repeat(s * s))
        # F.pad order: (left, right, top, bottom); input positions outside the map contribute zero
        self.pad = (-lo_w, hi_w, -lo_h, hi_h)

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return depth_to_space(F.conv2d(x, self.weight, self.bias), self.stride)


def _convt_pixelshuffle(model: nn.Module) -> int:
    count = 0
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.ConvTranspose2d) and m.stride[0] > 1:
            _swap(model, name, PixelShuffleConvTranspose2d(m))
            count += 1
    return count


def _norm_fed_convs(g: Generator) -> list[tuple[nn.Module, nn.Module | str]]:
    """(conv, norm) pairs where the conv's output goes straight into the norm, by family structure."""
    pairs: list[tuple[nn.Module, nn.Module | str]] = []
    if g.family == "resnet":
        pairs += [(g.stem, g.stem_norm), (g.down1, g.down1_norm), (g.down2, g.down2_norm)]
        pairs += [(g.up1, g.up1_norm), (g.up2, g.up2_norm)]
        for block in g.blocks:
            if g.options["separable"]:
                pairs += [(block.conv1.depthwise, block.conv1.norm), (block.conv1.pointwise, block.norm1)]
                pairs += [(block.conv2.depthwise, block.conv2.norm), (block.conv2.pointwise, block.norm2)]
            else:
                pairs += [(block.conv1, block.norm1), (block.conv2, block.norm2)]
    elif g.family == "munit":
        pairs += [
            (g.content_stem, g.content_stem_norm),
            (g.content_down1, g.content_down1_norm),
            (g.content_down2, g.content_down2_norm),
        ]
        for block in g.enc_blocks:
            pairs += [(block.conv1, block.norm1), (block.conv2, block.norm2)]
        # AdaIN normalises conv outputs with a parameter-free instance norm too
        for block in g.dec_blocks:
            pairs += [(block.conv1, "adain"), (block.conv2, "adain")]
    return pairs


def _fold_norm_bias(model: nn.Module) -> int:
    g = getattr(model, "generator", model)
    if not isinstance(g, Generator):
        return 0
    count = 0
    for conv, norm in _norm_fed_convs(g):
        instance = norm == "adain" or isinstance(norm, FixedInstanceNorm2d)
        bias = getattr(conv, "bias", None)
        if instance and isinstance(bias, torch.Tensor):
            # InstanceNorm subtracts the per-channel mean, which contains the bias exactly
            conv.bias = None
            count += 1
    return count


class SpaceToDepthConv2d(nn.Module):
    """A stride-1 convolution with a large kernel and few channels, run on a 2× coarser grid.

    The padded input is pixel-unshuffled (4× the channels, half the height and width), convolved
    with a kernel of ``(k + 1) // 2`` taps per axis that produces all four output phases as
    channels, and pixel-shuffled back. The function is the same; what changes is the shape of the
    work: a 7×7 conv from 16 to 3 channels (the ResNet head) wastes most of a CPU's vector lanes
    (ONNX Runtime pads 3 output channels to 16), while 64 → 12 channels fills them. The phases are
    stacked blocks first (:func:`space_to_depth` / :func:`depth_to_space`), so the export is one
    ``SpaceToDepth`` and one ``DepthToSpace`` node rather than reshapes and transposes.
    """

    def __init__(self, m: nn.Conv2d) -> None:
        super().__init__()
        if m.groups != 1 or m.stride != (1, 1) or m.dilation != (1, 1) or isinstance(m.padding, str):
            raise ConfigError(
                "space_to_depth supports stride-1, ungrouped, undilated Conv2d with int padding"
            )
        k_h, k_w = m.kernel_size
        kc_h, kc_w = (k_h + 2) // 2, (k_w + 2) // 2
        w = m.weight.detach()  # (cout, cin, k_h, k_w)
        cout, cin = w.shape[:2]
        weight = torch.zeros(cout * 4, cin * 4, kc_h, kc_w, dtype=w.dtype)
        for a in range(2):  # output phase (row, column)
            for b in range(2):
                for q in range(2):  # input phase
                    for r in range(2):
                        for ph in range(kc_h):
                            u = 2 * ph + q - a
                            if not 0 <= u < k_h:
                                continue
                            for pw in range(kc_w):
                                v = 2 * pw + r - b
                                if 0 <= v < k_w:
                                    weight[
                                        (a * 2 + b) * cout : (a * 2 + b + 1) * cout,
                                        (q * 2 + r) * cin : (q * 2 + r + 1) * cin,
                                        ph,
                                        pw,
                                    ] = w[:, :, u, v]
        self.kernel_size = (k_h, k_w)
        self.weight = nn.Parameter(weight)
        self.bias = None if m.bias is None else nn.Parameter(m.bias.detach().repeat(4))
        p_h, p_w = m.padding
        self.pad = (p_w, p_w, p_h, p_h)
        self.padding_mode = "constant" if m.padding_mode == "zeros" else m.padding_mode

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:
        if any(self.pad):
            x = _pad(x, self.pad, self.padding_mode)
        h, w = x.shape[-2] - self.kernel_size[0] + 1, x.shape[-1] - self.kernel_size[1] + 1
        # odd sizes get one zero row/column so the grid halves; the extra outputs are cropped
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # no empty pad node (XNNPACK's int8 pad rejects it)
            x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        y = depth_to_space(F.conv2d(space_to_depth(x, 2), self.weight, self.bias), 2)
        if y.shape[-2:] != (h, w):  # a no-op slice would still be a graph node (an alias outside XNNPACK)
            y = y[..., :h, :w]
        return y


def reflect_pad_slices(x: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """``F.pad(x, pad, mode="reflect")`` for 4-D ``x`` as slices and concatenation (bit-exact).

    ``pad`` is ``(left, right, top, bottom)``; left column ``j`` of the result is input column
    ``left - j``, the mirror image without repeating the edge.
    """
    left, right, top, bottom = pad
    width, height = x.shape[-1], x.shape[-2]
    if left >= width or right >= width or top >= height or bottom >= height:
        raise ConfigError(f"reflection padding {tuple(pad)} needs an input larger than {height}×{width}")
    if left or right:
        cols = [x[..., i : i + 1] for i in range(left, 0, -1)] + [x]
        cols += [x[..., width - 1 - i : width - i] for i in range(1, right + 1)]
        x = torch.cat(cols, dim=-1)
    if top or bottom:
        rows = [x[..., i : i + 1, :] for i in range(top, 0, -1)] + [x]
        rows += [x[..., height - 1 - i : height - i, :] for i in range(1, bottom + 1)]
        x = torch.cat(rows, dim=-2)
    return x


def _pad(x: torch.Tensor, pad: Sequence[int], mode: str) -> torch.Tensor:
    if mode == "reflect_slices":
        return reflect_pad_slices(x, pad)
    return F.pad(x, tuple(pad), mode=mode)


class SlicedReflectConv2d(FixedConv2d):
    """A reflect-padded convolution whose padding is :func:`reflect_pad_slices` (same function)."""

    def forward(self, x: torch.Tensor, *widths: object, **kw: object) -> torch.Tensor:  # type: ignore[override]
        x = reflect_pad_slices(x, self._reversed_padding_repeated_twice)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class PrimitiveInstanceNorm2d(nn.Module):
    """InstanceNorm from mean, subtract, multiply and ``rsqrt``: the same biased variance and eps."""

    def __init__(self, norm: FixedInstanceNorm2d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().view(1, -1, 1, 1))
        self.bias = None if norm.bias is None else nn.Parameter(norm.bias.detach().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        variance = (centred * centred).mean(dim=(2, 3), keepdim=True)
        y = centred * torch.rsqrt(variance + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def _instance_norm_primitives(model: nn.Module) -> int:
    count = 0
    for name, m in list(model.named_modules()):
        if isinstance(m, FixedInstanceNorm2d):
            _swap(model, name, PrimitiveInstanceNorm2d(m))
            count += 1
    return count


def _reflect_pad_slices(model: nn.Module) -> int:
    count = 0
    for name, m in list(model.named_modules()):
        if isinstance(m, SpaceToDepthConv2d) and m.padding_mode == "reflect":
            m.padding_mode = "reflect_slices"
            count += 1
        elif type(m) is FixedConv2d and m.padding_mode == "reflect" and any(m.padding):
            new = SlicedReflectConv2d(
                m.in_channels,
                m.out_channels,
                m.kernel_size,
                stride=m.stride,
                padding=m.padding,
                dilation=m.dilation,
                groups=m.groups,
                bias=m.bias is not None,
                padding_mode="reflect",
            )
            new.load_state_dict(m.state_dict())
            _swap(model, name, new)
            count += 1
    return count


def _space_to_depth(model: nn.Module) -> int:
    count = 0
    for name, m in list(model.named_modules()):
        if (
            isinstance(m, nn.Conv2d)
            and m.groups == 1
            and m.stride == (1, 1)
            and m.dilation == (1, 1)
            and not isinstance(m.padding, str)
            and min(m.kernel_size) >= 5
            # few *output* channels waste vector lanes (kernels vectorise over output channels);
            # few input channels do not, and the stem's 3 → C conv only grows by the rewrite
            # (4×4 taps over 12 channels > 7×7 over 3: the teacher's stem went 616M → 805M MACs)
            and m.out_channels < 16
        ):
            _swap(model, name, SpaceToDepthConv2d(m))
            count += 1
    return count


_REWRITE_FNS = {
    "convt_pixelshuffle": _convt_pixelshuffle,
    "fold_norm_bias": _fold_norm_bias,
    "space_to_depth": _space_to_depth,
    "instance_norm_primitives": _instance_norm_primitives,
    "reflect_pad_slices": _reflect_pad_slices,
}


def apply_rewrites(model: nn.Module, rewrites: Sequence[str] = DEFAULT_REWRITES) -> nn.Module:
    """Apply the named rewrites in place to a deploy module (from :func:`deploy_module`) and return it.

    They run in the order of :data:`REWRITES` whatever order they are named in, so that a rewrite
    that replaces a layer (``space_to_depth``) comes before one that changes how it pads.

    Example:
        >>> fast = apply_rewrites(deploy_module(g), ("convt_pixelshuffle",))
    """
    unknown = [r for r in rewrites if r not in _REWRITE_FNS]
    if unknown:
        raise ConfigError(f"unknown rewrite(s) {unknown}; known: {', '.join(REWRITES)}")
    for name in REWRITES:
        if name in rewrites:
            _REWRITE_FNS[name](model)
    return model.eval()


def deploy(generator: Generator, rewrites: Sequence[str] = DEFAULT_REWRITES) -> nn.Module:
    """:func:`deploy_module` followed by :func:`apply_rewrites`."""
    return apply_rewrites(deploy_module(generator), rewrites)
