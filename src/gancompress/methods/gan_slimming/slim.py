"""Normalisation scales γ as channel gates: the student, the proximal step, budget control, removal.

The student is the teacher's family at the teacher's widths with a learnable per-channel scale γ and
shift β on every normalisation layer (an InstanceNorm without affine gets γ = 1, β = 0, which leaves
the function unchanged). A channel is *off* in a norm when its γ is 0; the proximal step then also
sets its β to 0, so the norm outputs exactly 0 there and removing the channel is exact (the paper
removes γ = 0 channels and leaves β to fine-tuning; we zero β so the removal changes nothing).

Which norms gate which channels comes from :func:`gancompress.pruning.coupled_tensors`: the norm
scales coupled to a width group are the norms that *write* its channels. A channel of a group is
removed when it is off in every norm that writes it:

- the ResNet trunk is written by the last downsampling norm and by every residual block's second
  norm (the sums of the skip connections): a trunk channel goes only when it is off in all of them;
- the U-Net level k is written by its downsampling norm and by the decoder norm whose output is
  concatenated with it as the skip: a channel goes only when both are off;
- a group whose tensors all sit in separate repeated blocks (the ResNet's hidden1..3, three residual
  blocks each) is decided per block: each block keeps its own live channels, moved to the front, and
  the group's width is the largest count among its blocks (the padding channels of narrower blocks
  are off, so they output 0).

Every group keeps at least one unit of width (its multiplier) and a multiple of it; groups without
normalisation scales (U-Net's outermost and innermost levels) keep their width.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import ArchSpecError, BudgetError, ConfigError
from ...export.saved import load_state_strict
from ...models import Generator
from ...pruning import Coupling, coupled_tensors

SUPPORTED_FAMILIES = ("resnet", "unet")
NORM_TYPES = (nn.InstanceNorm2d, nn.BatchNorm2d)


@dataclass(frozen=True)
class ScalePart:
    """Channels of one width group decided together: the norms that write them and every coupled tensor."""

    norms: tuple[str, ...]
    couplings: tuple[Coupling, ...]


@dataclass(frozen=True)
class ScaleGroup:
    """A width group whose channels are gated by normalisation scales."""

    name: str
    multiplier: int
    channels: int
    parts: tuple[ScalePart, ...]

    @property
    def norms(self) -> tuple[str, ...]:
        return tuple(n for p in self.parts for n in p.norms)


def check_supported(generator: Generator) -> None:
    """Raise a ConfigError when the family's norms cannot gate its channels."""
    if generator.family not in SUPPORTED_FAMILIES:
        raise ConfigError(
            f"gan-slimming supports the families {list(SUPPORTED_FAMILIES)}, not {generator.family!r}: "
            "SPADE's and MUNIT's normalisations have no per-channel scale to sparsify (their modulation "
            "comes from convs or an MLP)"
        )
    if generator.options.get("separable"):
        raise ConfigError(
            "gan-slimming: separable ResNet blocks normalise the trunk inside the block, a norm that reads "
            "trunk channels without writing them; use a plain ResNet teacher"
        )


def slimmable_student(teacher: Generator, layout: str | None = "blocks") -> Generator:
    """The teacher's family and widths with affine norms everywhere, starting from the teacher's weights.

    A ResNet student gets ``layout`` (default ``blocks``: every residual block its own inner width,
    as the official GAN Slimming's ``dim_lst``; ``thirds``: one width per third of the blocks, each
    block keeping its own live channels padded to the largest; None: the teacher's layout). The
    tensors are the same in every layout, so the student starts as the teacher either way.

    Example:
        >>> student = slimmable_student(teacher)  # same output as the teacher; γ = 1, β = 0 where new
    """
    check_supported(teacher)
    options = dict(teacher.options)
    if options.get("norm") == "none":
        raise ConfigError("gan-slimming needs normalisation layers; the teacher has norm='none'")
    options["norm_affine"] = True
    arch = teacher.arch
    if teacher.family == "resnet" and layout is not None and layout != options.get("layout", "thirds"):
        if options.get("layout") == "legacy" or layout == "legacy":
            raise ConfigError(
                "gan-slimming: the legacy ResNet layout ties blocks to the trunk; use thirds or blocks"
            )
        options["layout"] = layout
        arch = _arch_in_layout(teacher, layout)
    student = type(teacher).from_options(arch, options)
    state = dict(student.state_dict())
    for key, value in teacher.state_dict().items():
        if key not in state or state[key].shape != value.shape:
            raise ConfigError(f"teacher tensor {key} has no place in the slimmable student")
        state[key] = value
    for name, module in student.named_modules():
        if isinstance(module, NORM_TYPES) and f"{name}.weight" not in teacher.state_dict():
            state[f"{name}.weight"] = torch.ones_like(module.weight)
            state[f"{name}.bias"] = torch.zeros_like(module.bias)
    load_state_strict(student, state, "teacher")
    return student.train()


def _arch_in_layout(teacher: Generator, layout: str) -> ArchSpec:
    """The teacher's widths written for a ResNet of ``layout`` (each block keeps its width)."""
    ch = teacher.channels()
    n = teacher.options["num_blocks"]
    blocks = [ch[teacher.block_group(i)] // 4 for i in range(n)]
    head = [ch["stem"], ch["down1"] // 2, ch["trunk"] // 4]
    tail = [ch["up1"] // 2, ch["up2"]]
    if layout == "blocks":
        return ArchSpec(teacher.family, (*head, *blocks, *tail))
    third = n // 3
    if any(blocks[i] != blocks[min(i // third, 2) * third] for i in range(n)):
        raise ConfigError("gan-slimming: the teacher's blocks have widths one per third cannot hold")
    return ArchSpec(teacher.family, (*head, blocks[0], blocks[third], blocks[2 * third], *tail))


def _expand_aliases(generator: Generator, wanted: list[str]) -> list[str]:
    """``hidden1..3`` in a per-block ResNet: the blocks of that third (recipes written for either layout)."""
    if generator.family != "resnet" or generator.options.get("layout") != "blocks":
        return wanted
    n = generator.options["num_blocks"]
    third = n // 3
    out = []
    for name in wanted:
        if name in ("hidden1", "hidden2", "hidden3"):
            k = int(name[-1]) - 1
            out += [f"block{i + 1}" for i in range(n) if min(i // third, 2) == k]
        else:
            out.append(name)
    return out


def _list_item(key: str, modules: Mapping[str, nn.Module]) -> str | None:
    """``blocks.3`` for ``blocks.3.conv1.weight`` (the item of the first ModuleList on the path)."""
    parts = key.split(".")
    for i in range(1, len(parts)):
        if isinstance(modules.get(".".join(parts[:i])), nn.ModuleList) and parts[i].isdigit():
            return ".".join(parts[: i + 1])
    return None


def scale_groups(generator: Generator, groups: Iterable[str] | None = None) -> dict[str, ScaleGroup]:
    """The width groups gated by normalisation scales (all of them, or those named in ``groups``).

    Example:
        >>> sg = scale_groups(student)        # {"stem": ScaleGroup(...), "trunk": ..., ...}
    """
    check_supported(generator)
    modules = dict(generator.named_modules())
    couplings = coupled_tensors(generator)
    channels = generator.channels()
    wanted = None if groups is None else _expand_aliases(generator, list(groups))
    if wanted is not None:
        unknown = sorted(set(wanted) - set(couplings))
        if unknown:
            raise ConfigError(f"slim.groups: unknown width group(s) {unknown}; known: {list(couplings)}")
    out: dict[str, ScaleGroup] = {}
    for group in generator.width_groups:
        if wanted is not None and group.name not in wanted:
            continue
        cs = couplings[group.name]
        norms = []
        for c in cs:
            mod_name, _, param = c.key.rpartition(".")
            if isinstance(modules[mod_name], NORM_TYPES) and param == "weight":
                norms.append(mod_name)
        producers = sum(c.producer for c in cs)
        if not norms or len(norms) < producers:
            # a layer writes these channels without a norm after it (U-Net's outermost and innermost
            # levels): γ cannot switch them off
            if wanted is not None:
                raise ConfigError(
                    f"slim.groups: width group {group.name!r} is written by a layer without a normalisation scale"
                )
            continue
        for n in norms:
            if not modules[n].affine:
                raise ConfigError(f"norm {n} has no scale γ: build the student with slimmable_student()")
        out[group.name] = ScaleGroup(
            group.name, group.multiplier, channels[group.name], _partition(cs, norms, modules)
        )
    return out


def _partition(
    cs: list[Coupling], norms: list[str], modules: Mapping[str, nn.Module]
) -> tuple[ScalePart, ...]:
    """One part per repeated block when the group lives entirely inside separate blocks, else one part."""
    items = [_list_item(c.key, modules) for c in cs]
    if None not in items:
        by_item: dict[str, list[Coupling]] = {}
        for item, c in zip(items, cs):
            by_item.setdefault(item, []).append(c)  # type: ignore[arg-type]
        parts = []
        for item, members in by_item.items():
            part_norms = tuple(n for n in norms if n.startswith(item + "."))
            if not part_norms or not any(c.producer for c in members):
                break
            parts.append(ScalePart(part_norms, tuple(members)))
        else:
            if len(parts) > 1:
                return tuple(parts)
    return (ScalePart(tuple(norms), tuple(cs)),)


# -- γ --------------------------------------------------------------------------------------------
def _norm(generator: nn.Module, name: str) -> nn.Module:
    return generator.get_submodule(name)


def gamma_parameters(generator: Generator, groups: Mapping[str, ScaleGroup]) -> list[nn.Parameter]:
    """The γ tensors of every gating norm (each once)."""
    seen, out = set(), []
    for g in groups.values():
        for n in g.norms:
            if n not in seen:
                seen.add(n)
                out.append(_norm(generator, n).weight)
    return out


@torch.no_grad()
def soft_threshold_(gammas: Iterable[torch.Tensor], threshold: float) -> None:
    """The proximal operator of ``threshold·‖γ‖₁``, in place: ``sign(γ)·max(|γ| − threshold, 0)``."""
    for g in gammas:
        g.copy_(torch.sign(g) * torch.clamp(g.abs() - threshold, min=0))


@torch.no_grad()
def switch_off_dead_(generator: Generator, groups: Mapping[str, ScaleGroup]) -> int:
    """Set β to 0 wherever γ is 0, so those norms output exactly 0; returns the count of such entries."""
    off = 0
    for g in groups.values():
        for n in g.norms:
            norm = _norm(generator, n)
            dead = norm.weight == 0
            norm.bias[dead] = 0
            off += int(dead.sum())
    return off


@torch.no_grad()
def part_scores(generator: Generator, group: ScaleGroup) -> list[torch.Tensor]:
    """Per part, each channel's largest |γ| over the norms that write it (0: the channel is off)."""
    out = []
    for part in group.parts:
        s = torch.stack([_norm(generator, n).weight.detach().abs().float().cpu() for n in part.norms])
        out.append(s.max(dim=0).values)
    return out


def _width(alive: int, multiplier: int) -> int:
    return max(1, math.ceil(alive / multiplier))


def widths_at(generator: Generator, groups: Mapping[str, ScaleGroup], threshold: float = 0.0) -> ArchSpec:
    """The widths left when every channel with score ≤ ``threshold`` (and every γ = 0 one) is removed."""
    names = [g.name for g in generator.width_groups]
    widths = list(generator.arch.widths)
    for g in groups.values():
        alive = max(int((s > threshold).sum()) for s in part_scores(generator, g))
        widths[names.index(g.name)] = min(widths[names.index(g.name)], _width(alive, g.multiplier))
    return ArchSpec(generator.arch.family, tuple(widths))


def alive_channels(generator: Generator, groups: Mapping[str, ScaleGroup]) -> dict[str, int]:
    """Live channels per group (the largest count among a group's blocks)."""
    return {g.name: max(int((s > 0).sum()) for s in part_scores(generator, g)) for g in groups.values()}


@torch.no_grad()
def threshold_to_budget(
    generator: Generator,
    groups: Mapping[str, ScaleGroup],
    macs: Callable[[ArchSpec], int],
    budget: float,
) -> dict[str, float | int | str]:
    """Switch off the channels of smallest |γ| (one global threshold) until the widths cost ≤ ``budget``.

    ``macs`` gives the paper-convention MACs of an ArchSpec. Raises BudgetError when even one unit of
    width per gated group costs more. Returns what was done.

    Example:
        >>> threshold_to_budget(student, groups, MacsTable(student, (256, 256)), 3e9)["threshold"]
    """
    before = widths_at(generator, groups)
    report: dict[str, float | int | str] = {"arch_before": str(before), "macs_before": macs(before)}
    if macs(before) <= budget:
        report.update(threshold=0.0, switched_off=0)
        return report
    scores = torch.cat([s for g in groups.values() for s in part_scores(generator, g)])
    candidates = torch.unique(scores[scores > 0]).tolist()  # ascending
    lo, hi = 0, len(candidates) - 1
    if not candidates or macs(widths_at(generator, groups, candidates[hi])) > budget:
        floor = widths_at(generator, groups, math.inf)
        raise BudgetError(
            f"MACs target {budget:.4g} is below what one unit of width per gated group costs "
            f"({floor}: {macs(floor):.4g} MACs); raise the target or gate more groups (slim.groups)"
        )
    while lo < hi:  # the smallest threshold that meets the budget (MACs fall as the threshold rises)
        mid = (lo + hi) // 2
        if macs(widths_at(generator, groups, candidates[mid])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    threshold = candidates[lo]
    switched = 0
    for g in groups.values():
        for n in g.norms:
            norm = _norm(generator, n)
            off = (norm.weight.abs() <= threshold) & (norm.weight != 0)
            switched += int(off.sum())
            norm.weight[off] = 0
    switch_off_dead_(generator, groups)
    report.update(threshold=float(threshold), switched_off=switched)
    return report


# -- removal --------------------------------------------------------------------------------------
@torch.no_grad()
def _permute_part(generator: Generator, part: ScalePart, channels: int, order: torch.Tensor) -> None:
    state = generator.state_dict()
    for c in part.couplings:
        t = state[c.key]
        index = torch.cat([order + s * channels for s in range(c.segments)]).to(t.device)
        t.copy_(t.index_select(c.dim, index))


@torch.no_grad()
def remove_off_channels(
    generator: Generator,
    groups: Mapping[str, ScaleGroup],
    *,
    check: bool = True,
    atol: float = 1e-4,
) -> Generator:
    """A plain generator of the same family without the channels whose γ is 0 (see the module docstring).

    Live channels move to the front (a function-preserving permutation of every coupled tensor), and
    the leading-channel subnet is extracted. With ``check``, the outputs before and after are compared
    on the family's example input and an ArchSpecError is raised if they differ by more than ``atol``.
    The input is not modified.

    Example:
        >>> small = remove_off_channels(student, scale_groups(student))
    """
    switch_off_dead_(generator, groups)  # the removal is exact only where β follows γ to 0
    work = copy.deepcopy(generator)
    for g in groups.values():
        for part, score in zip(g.parts, part_scores(work, g)):
            live = torch.nonzero(score > 0).flatten()
            rest = torch.nonzero(score == 0).flatten()
            _permute_part(work, part, g.channels, torch.cat([live, rest]))
    arch = widths_at(generator, groups)
    slim = work.extract_subnet(arch)
    if check:
        ref, new = copy.deepcopy(generator).eval(), copy.deepcopy(slim).eval()
        device = next(generator.parameters()).device
        side = max(32, 2 ** int(generator.options.get("num_downs", 0)))  # U-Net: one pixel at the bottleneck
        x = generator.example_input((side, side), batch=2).to(device)
        diff = float((ref(x) - new(x)).abs().max())
        if diff > atol:
            raise ArchSpecError(
                f"removing the γ = 0 channels changed the output by {diff:.3g} (> {atol}); "
                "the gating norms do not cover every coupled layer of this network"
            )
    return slim.train(generator.training)
