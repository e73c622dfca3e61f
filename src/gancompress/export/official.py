"""Import generator state dicts in the pytorch-CycleGAN-and-pix2pix layout and its close variants.

The official ``ResnetGenerator`` and ``UnetGenerator`` (and gan-compression's ``resnet_9blocks``) store
their weights under positional ``nn.Sequential`` keys (``model.10.conv_block.5.weight``,
``model.model.1.model.3.model...``). Re-implementations rename the containers (``block`` for
``conv_block``, ``net`` for ``model``) but keep the module order. So the architecture is read from the
*order and shapes* of the parameterised modules, never from the presence of one key name:

* ResNet: a 7×7 conv, two 3×3 downsampling convs, pairs of 3×3 convs at the trunk width (one pair per
  residual block), two 3×3 transposed convs, a 7×7 head. U-Net: 4×4 convs only, ``n`` down then ``n`` up.
* the norm from what the norm modules hold and whether the convs have a bias (the official rule: a conv
  before InstanceNorm has a bias, before BatchNorm it has none): ``instance`` (no parameters),
  ``instance-affine`` (weight + bias, no running statistics needed), ``batch`` (running statistics).
* padding and the dropout slot of a residual block from the positions of its two convs inside the block
  (reflection padding occupies a slot, zero padding does not, dropout occupies one between them).

What could not be read from the file (the dropout *rate*, reflect vs replicate) is reported as such in
:class:`Inference` so that callers can print it and let the user override it.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Generator, create_generator
from .saved import load_state_strict

_NORM_LEAVES = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_STATS = ("running_mean", "running_var", "num_batches_tracked")
NORM_CHOICES = ("instance", "instance-affine", "batch")
PADDING_CHOICES = ("reflect", "replicate", "zero")


class AmbiguousCheckpointError(CheckpointError):
    """The file fits more than one reading; ``candidates`` lists them (each with the option that picks it)."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message + "; candidates: " + "; ".join(candidates))
        self.candidates = candidates


def read_pth(path: str | os.PathLike) -> Any:
    """Read a ``.pth``/``.pt``/``.ckpt`` file without executing code (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused — it is not a plain tensor checkpoint and loading it would execute code ({exc})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None


@dataclass(eq=False)
class _Module:
    path: str
    leaves: dict[str, torch.Tensor]

    @property
    def is_conv(self) -> bool:
        w = self.leaves.get("weight")
        return w is not None and w.ndim == 4 and set(self.leaves) <= {"weight", "bias"}

    @property
    def is_norm(self) -> bool:
        if not set(self.leaves) <= _NORM_LEAVES:
            return False
        affine = "weight" in self.leaves and "bias" in self.leaves
        stats = "running_mean" in self.leaves and "running_var" in self.leaves
        return (affine or stats) and all(v.ndim <= 1 for v in self.leaves.values())

    @property
    def kernel(self) -> int:
        return int(self.leaves["weight"].shape[-1])

    def shape(self) -> tuple[int, ...]:
        return tuple(self.leaves["weight"].shape)


@dataclass
class Inference:
    """What was read from a state dict: the family, its options, how each was found, the key map."""

    family: str
    options: dict[str, Any]
    found: dict[str, str]  # option -> how it was read from the file
    unknown: dict[str, str] = field(default_factory=dict)  # option -> why the file cannot tell
    key_map: dict[str, str] = field(default_factory=dict)  # module path in the file -> gancompress path
    drop: tuple[str, ...] = ()  # keys the network has no place for (InstanceNorm running statistics)


def _modules(state: dict[str, torch.Tensor]) -> list[_Module]:
    """Parameterised modules in the order the file lists them (the registration order of torch)."""
    by_path: dict[str, _Module] = {}
    for key, value in state.items():
        path, _, leaf = key.rpartition(".")
        if not path:
            raise CheckpointError(f"key {key!r} is not of the form 'module.parameter'")
        by_path.setdefault(path, _Module(path, {})).leaves[leaf] = value
    mods = list(by_path.values())
    odd = [
        ", ".join(f"{m.path}.{k} {tuple(v.shape)}" for k, v in m.leaves.items())
        for m in mods
        if not (m.is_conv or m.is_norm)
    ]
    if odd:
        raise CheckpointError(
            f"neither a convolution nor a norm of a ResNet/U-Net generator: {'; '.join(odd[:10])}"
        )
    return mods


def _pairs(mods: list[_Module]) -> list[tuple[_Module, _Module | None]]:
    """Each conv with the norm that follows it (None when no norm module holds tensors)."""
    out: list[tuple[_Module, _Module | None]] = []
    for m in mods:
        if m.is_conv:
            out.append((m, None))
        elif not out or out[-1][1] is not None:
            raise CheckpointError(f"{m.path}: a norm that does not follow a convolution")
        else:
            out[-1] = (out[-1][0], m)
    return out


def _norm_of(conv: _Module, norm: _Module | None) -> str:
    bias = "bias" in conv.leaves
    affine = norm is not None and "weight" in norm.leaves
    if bias:  # the official code gives convs a bias only before InstanceNorm
        return "instance-affine" if affine else "instance"
    if norm is not None and "running_mean" in norm.leaves and affine:
        return "batch"
    if norm is None:
        raise CheckpointError(
            f"{conv.path}: a conv without bias and no norm after it (norm 'none') is not supported"
        )
    raise CheckpointError(
        f"{norm.path}: a norm with {sorted(norm.leaves)} after a conv without bias is neither the "
        "official BatchNorm (weight, bias, running statistics) nor an InstanceNorm"
    )


def _infer_norm(pairs: list[tuple[_Module, _Module | None]]) -> tuple[str, str]:
    kinds: dict[str, list[str]] = {}
    for conv, norm in pairs:
        kinds.setdefault(_norm_of(conv, norm), []).append(conv.path)
    if len(kinds) > 1:
        detail = "; ".join(f"{k}: {', '.join(v[:3])}{' …' if len(v) > 3 else ''}" for k, v in kinds.items())
        raise CheckpointError(f"the layers disagree on the norm ({detail})")
    (kind,) = kinds
    how = {
        "instance": "convs have a bias and no norm holds tensors",
        "instance-affine": "convs have a bias and each norm a weight and a bias",
        "batch": "convs have no bias and each norm running statistics",
    }[kind]
    return kind, how


def _check(mod: _Module, expected: tuple[int, ...], what: str) -> None:
    if mod.shape() != expected:
        raise CheckpointError(f"{mod.path}.weight: {what} should be {expected}, the file has {mod.shape()}")


def _block_layout(conv1: _Module, conv2: _Module) -> tuple[str | None, bool | None]:
    """(padding, has a dropout slot) from the positions of a block's convs; None where names tell nothing."""
    parent1, _, i1 = conv1.path.rpartition(".")
    parent2, _, i2 = conv2.path.rpartition(".")
    if parent1 != parent2 or not (i1.isdigit() and i2.isdigit()):
        return None, None
    a, b = int(i1), int(i2)
    # official: [pad] conv norm relu [dropout] [pad] conv norm
    if a == 1 and b in (5, 6):
        return "reflect", b == 6
    if a == 0 and b in (3, 4):
        return "zero", b == 4
    raise CheckpointError(
        f"{conv1.path} / {conv2.path}: the convs of a residual block sit at positions {a} and {b}; "
        "the official layouts put them at 1 and 5 or 6 (reflection padding), 0 and 3 or 4 (zero padding)"
    )


def infer_resnet(state: dict[str, torch.Tensor]) -> Inference:
    """Read a ResNet generator (stem, 2 downsamplings, residual blocks, 2 upsamplings, head) from shapes."""
    pairs = _pairs(_modules(state))
    convs = [c for c, _ in pairs]
    if len(convs) < 6 or convs[0].kernel != 7 or convs[-1].kernel != 7:
        raise CheckpointError("not a ResNet generator: it starts and ends with a 7×7 convolution")
    stem, down1, down2, *trunk, up1, up2, head = convs
    blocks = _group_blocks(trunk)
    width = stem.shape()[0]
    in_ch = stem.shape()[1]
    _check(stem, (width, in_ch, 7, 7), "the 7×7 stem")
    d1 = down1.shape()[0]
    _check(down1, (d1, width, 3, 3), "the first downsampling conv")
    t = down2.shape()[0]
    _check(down2, (t, d1, 3, 3), "the second downsampling conv")
    hidden = []
    for c1, c2 in blocks:
        h = c1.shape()[0]
        _check(c1, (h, t, 3, 3), "a residual block's first conv")
        _check(c2, (t, h, 3, 3), "a residual block's second conv")
        hidden.append(h)
    u1 = up1.shape()[1]
    _check(up1, (t, u1, 3, 3), "the first transposed conv (in, out, 3, 3)")
    u2 = up2.shape()[1]
    _check(up2, (u1, u2, 3, 3), "the second transposed conv (in, out, 3, 3)")
    out_ch = head.shape()[0]
    _check(head, (out_ch, u2, 7, 7), "the 7×7 head")
    n = len(blocks)
    if n < 3:
        raise CheckpointError(f"a ResNet generator with {n} residual blocks: this importer needs at least 3")
    third = n // 3
    groups = [hidden[:third], hidden[third : 2 * third], hidden[2 * third :]]
    if any(len(set(g)) != 1 for g in groups):
        raise CheckpointError(f"residual blocks have inner widths {hidden}; each third must share one width")
    widths = [width, d1, t, groups[0][0], groups[1][0], groups[2][0], u1, u2]
    multipliers = [1, 2, 4, 4, 4, 4, 2, 1]
    arch = _arch(widths, multipliers, width)
    norm, how_norm = _infer_norm([p for p in pairs if p[0] is not head])
    layouts = {_block_layout(c1, c2) for c1, c2 in blocks}
    if len(layouts) > 1:
        raise CheckpointError(f"residual blocks have different layouts (padding, dropout slot): {layouts}")
    ((padding, slot),) = layouts
    found = {
        "family": "7×7 stem and head, 3×3 convs between: ResNet",
        "in_channels": f"{stem.path}.weight {stem.shape()}",
        "out_channels": f"{head.path}.weight {head.shape()}",
        "base_width": f"stem width {width}",
        "num_blocks": f"{n} pairs of 3×3 trunk convs",
        "norm": how_norm,
    }
    if arch is not None:
        found["arch"] = f"widths {widths}"
    unknown: dict[str, str] = {}
    if padding is None:
        unknown["padding"] = "block convs are not numbered inside their block; assumed reflect"
        padding = "reflect"
    elif padding == "reflect":
        found["padding"] = (
            "a padding module before each block conv (reflect assumed, replicate looks the same)"
        )
    else:
        found["padding"] = "no padding module in the blocks"
    if slot is None:
        unknown["dropout"] = "block convs are not numbered inside their block"
    elif slot:
        unknown["dropout"] = (
            "each block has a dropout slot, whose rate the file does not hold: 0.5 in "
            "pytorch-CycleGAN-and-pix2pix (--use_dropout), 0 in gan-compression's resnet_9blocks"
        )
    else:
        found["dropout"] = "no dropout slot in the blocks"
    options = dict(
        in_channels=in_ch,
        out_channels=out_ch,
        base_width=width,
        num_blocks=n,
        norm=norm,
        padding=padding,
        dropout=0.0,
        arch=arch,
    )
    key_map = {stem.path: "stem", down1.path: "down1", down2.path: "down2"}
    key_map.update({up1.path: "up1", up2.path: "up2", head.path: "head"})
    for i, (c1, c2) in enumerate(blocks):
        key_map.update({c1.path: f"blocks.{i}.conv1", c2.path: f"blocks.{i}.conv2"})
    for conv, nm in pairs:
        if nm is not None:
            key_map[nm.path] = _norm_name(key_map[conv.path])
    return Inference("resnet", options, found, unknown, key_map)


def _norm_name(conv_name: str) -> str:
    if conv_name.startswith("blocks."):
        return conv_name.replace(".conv", ".norm")
    return f"{conv_name}_norm"


def _group_blocks(trunk: list[_Module]) -> list[tuple[_Module, _Module]]:
    """Residual blocks: trunk convs grouped by their parent module (or in consecutive pairs in a flat list)."""
    parents: dict[str, list[_Module]] = {}
    for c in trunk:
        parents.setdefault(c.path.rpartition(".")[0], []).append(c)
    if len(parents) == 1 and len(trunk) != 2:  # one flat container: pair them in order
        if len(trunk) % 2:
            raise CheckpointError(f"{len(trunk)} trunk convs cannot form residual blocks of two")
        return [(trunk[i], trunk[i + 1]) for i in range(0, len(trunk), 2)]
    for parent, cs in parents.items():
        if len(cs) != 2:
            raise CheckpointError(
                f"{parent}: a residual block with {len(cs)} convolution(s); a block has 2 (a key missing?)"
            )
    return [(cs[0], cs[1]) for cs in parents.values()]


def _arch(widths: list[int], multipliers: list[int], base: int) -> str | None:
    """The arch string (None for the standard widths at ``base``); error if a width is off-scale."""
    if all(w == m * base for w, m in zip(widths, multipliers)):
        return None
    if any(w % m for w, m in zip(widths, multipliers)):
        raise CheckpointError(f"layer widths {widths} are not multiples of {multipliers}")
    return "_".join(str(w // m) for w, m in zip(widths, multipliers))


def infer_unet(state: dict[str, torch.Tensor]) -> Inference:
    """Read a U-Net generator (``n`` 4×4 down convs, then ``n`` 4×4 transposed convs back up)."""
    pairs = _pairs(_modules(state))
    convs = [c for c, _ in pairs]
    if not convs or any(c.kernel != 4 for c in convs) or len(convs) % 2:
        raise CheckpointError("not a U-Net generator: an even number of 4×4 convolutions")
    n = len(convs) // 2
    if n < 5:
        raise CheckpointError(f"a U-Net with {n} levels: the official U-Net has at least 5")
    downs, ups = convs[:n], convs[n:][::-1]  # ups[i] is level i
    in_ch = downs[0].shape()[1]
    w = [d.shape()[0] for d in downs]
    for i, d in enumerate(downs):
        _check(d, (w[i], in_ch if i == 0 else w[i - 1], 4, 4), f"down conv of level {i}")
    out_ch = ups[0].shape()[1]
    for i, u in enumerate(ups):
        cin = w[i] if i == n - 1 else 2 * w[i]
        cout = out_ch if i == 0 else w[i - 1]
        _check(u, (cin, cout, 4, 4), f"transposed conv of level {i} (in, out, 4, 4)")
    by_conv = dict(pairs)
    normed = [downs[i] for i in range(1, n - 1)] + ups[1:]
    for conv in (downs[0], downs[-1], ups[0]):
        if by_conv[conv] is not None:
            raise CheckpointError(f"{by_conv[conv].path}: the official U-Net has no norm after {conv.path}")
    base = w[0]
    arch = _arch(w, [min(2**i, 8) for i in range(n)], base)
    norm, how_norm = _infer_norm([(c, by_conv[c]) for c in normed])
    found = {
        "family": "4×4 convs only: U-Net",
        "in_channels": f"{downs[0].path}.weight {downs[0].shape()}",
        "out_channels": f"{ups[0].path}.weight {ups[0].shape()}",
        "base_width": f"first level width {base}",
        "num_downs": f"{n} down and {n} up convs",
        "norm": how_norm,
    }
    if arch is not None:
        found["arch"] = f"widths {w}"
    unknown = {"dropout": "a U-Net's dropout has no tensors (0.5 in pix2pix unless --no_dropout)"}
    options = dict(
        in_channels=in_ch,
        out_channels=out_ch,
        base_width=base,
        num_downs=n,
        norm=norm,
        dropout=0.0,
        arch=arch,
    )
    key_map = {}
    for i in range(n):
        key_map[downs[i].path] = f"down.{i}"
        key_map[ups[i].path] = f"up.{i}"
        if by_conv[downs[i]] is not None:
            key_map[by_conv[downs[i]].path] = f"down_norm.{i}"
        if by_conv[ups[i]] is not None:
            key_map[by_conv[ups[i]].path] = f"up_norm.{i}"
    return Inference("unet", options, found, unknown, key_map)


INFERERS = {"resnet": infer_resnet, "unet": infer_unet}


def infer_architecture(state: dict[str, torch.Tensor], family: str | None = None) -> Inference:
    """Read the family and options of a generator state dict from its module order and shapes.

    Example:
        >>> inf = infer_architecture(torch.load("latest_net_G.pth", weights_only=True))
        >>> inf.family, inf.options["num_blocks"]
        ('resnet', 9)
    """
    if family is not None:
        if family not in INFERERS:
            raise ConfigError(f"--family {family!r}: checkpoints import as {' or '.join(INFERERS)}")
        return INFERERS[family](state)
    errors = {}
    for name, infer in INFERERS.items():
        try:
            return infer(state)
        except CheckpointError as exc:
            errors[name] = str(exc)
    raise CheckpointError(
        "not a ResNet or U-Net generator state dict ("
        + "; ".join(f"{k}: {v}" for k, v in errors.items())
        + ")"
    )


def norm_options(norm: str) -> dict[str, Any]:
    """``instance`` / ``instance-affine`` / ``batch`` → the generator's ``norm`` and ``norm_affine``."""
    if norm not in NORM_CHOICES:
        raise ConfigError(f"--norm must be one of {', '.join(NORM_CHOICES)}, got {norm!r}")
    if norm == "instance-affine":
        return {"norm": "instance", "norm_affine": True}
    return {"norm": norm, "norm_affine": False if norm == "instance" else None}


def build_from_inference(
    state: dict[str, torch.Tensor], inference: Inference, source: str = "state dict"
) -> Generator:
    """Build the generator ``inference`` describes and load ``state`` into it strictly."""
    options = dict(inference.options)
    options.update(norm_options(options.pop("norm")))
    if inference.family == "unet":
        options.pop("padding", None)
    mapped, unmapped = {}, []
    for key, value in state.items():
        path, _, leaf = key.rpartition(".")
        if path not in inference.key_map:
            unmapped.append(key)
            continue
        if options["norm"] == "instance" and leaf in _STATS:
            continue  # the official code drops InstanceNorm statistics that old PyTorch saved
        mapped[f"{inference.key_map[path]}.{leaf}"] = value
    if unmapped:
        raise CheckpointError(
            f"{source}: keys outside the inferred layout: {', '.join(sorted(unmapped)[:20])}"
        )
    from .limits import check_buildable

    try:
        # a few kB of (strided) tensors can claim a network of terabytes: checked on the meta device first
        shape_options = {k: v for k, v in options.items() if k != "arch"}
        check_buildable(inference.family, options.get("arch"), shape_options, source=str(source))
        generator = create_generator(inference.family, **options)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    load_state_strict(generator, mapped, source)
    return generator.eval()


def import_official_generator(
    path: str | os.PathLike | dict[str, torch.Tensor], family: str = "auto", **overrides: Any
) -> Generator:
    """Build a gancompress generator from an official pix2pix/CycleGAN ``net_G`` state dict.

    ``path`` is a ``.pth`` file (read with ``weights_only=True``) or an already loaded state dict;
    ``overrides`` replace inferred options (``norm="instance-affine"``, ``dropout=0.5``, …). The full
    resolver (wrapped dicts, saved directories, provenance) is :func:`gancompress.export.resolve.load_any_generator`.

    Example:
        >>> g = import_official_generator("checkpoints/horse2zebra/latest_net_G.pth")
    """
    from .resolve import Overrides, load_any_generator

    fields = {"family": None if family == "auto" else family}
    fields.update(overrides)
    generator, _ = load_any_generator(path, Overrides(**fields))
    return generator


def reference_forward(state: dict[str, torch.Tensor], inference: Inference, x: torch.Tensor) -> torch.Tensor:
    """Run the *original* tensors in the official module order with functional ops (eval mode).

    An independent check of an import: it uses the file's own keys and torch's functional layers, not
    the gancompress modules the weights were mapped into.
    """
    import torch.nn.functional as F

    orig = {v: k for k, v in inference.key_map.items()}
    opts = inference.options
    kind = opts["norm"]

    def p(name: str, leaf: str) -> torch.Tensor | None:
        return state.get(f"{orig[name]}.{leaf}") if name in orig else None

    def norm(h: torch.Tensor, name: str) -> torch.Tensor:
        if kind == "batch":
            return F.batch_norm(
                h, p(name, "running_mean"), p(name, "running_var"), p(name, "weight"), p(name, "bias"), False
            )
        return F.instance_norm(h, weight=p(name, "weight"), bias=p(name, "bias"))

    def conv(h: torch.Tensor, name: str, **kw: Any) -> torch.Tensor:
        return F.conv2d(h, p(name, "weight"), p(name, "bias"), **kw)

    def convt(h: torch.Tensor, name: str, **kw: Any) -> torch.Tensor:
        return F.conv_transpose2d(h, p(name, "weight"), p(name, "bias"), stride=2, padding=1, **kw)

    with torch.no_grad():
        if inference.family == "resnet":
            h = F.relu(norm(conv(F.pad(x, (3,) * 4, mode="reflect"), "stem"), "stem_norm"))
            h = F.relu(norm(conv(h, "down1", stride=2, padding=1), "down1_norm"))
            h = F.relu(norm(conv(h, "down2", stride=2, padding=1), "down2_norm"))

            def block_conv(t: torch.Tensor, name: str) -> torch.Tensor:
                if opts["padding"] == "zero":
                    return conv(t, name, padding=1)
                return conv(F.pad(t, (1,) * 4, mode=opts["padding"]), name)

            for i in range(opts["num_blocks"]):
                r = F.relu(norm(block_conv(h, f"blocks.{i}.conv1"), f"blocks.{i}.norm1"))
                h = h + norm(block_conv(r, f"blocks.{i}.conv2"), f"blocks.{i}.norm2")
            h = F.relu(norm(convt(h, "up1", output_padding=1), "up1_norm"))
            h = F.relu(norm(convt(h, "up2", output_padding=1), "up2_norm"))
            return torch.tanh(conv(F.pad(h, (3,) * 4, mode="reflect"), "head"))
        n = opts["num_downs"]
        skips, h = [], x
        for i in range(n):
            h = conv(h if i == 0 else F.leaky_relu(h, 0.2), f"down.{i}", stride=2, padding=1)
            h = norm(h, f"down_norm.{i}") if 0 < i < n - 1 else h
            skips.append(h)
        for i in range(n - 1, -1, -1):
            h = convt(F.relu(h if i == n - 1 else torch.cat([skips[i], h], 1)), f"up.{i}")
            if i == 0:
                return torch.tanh(h)
            h = norm(h, f"up_norm.{i}")
    raise AssertionError("unreachable")
