"""CAT's one-step pruning: one global threshold on the normalisation scales |γ| meets a MACs target.

Each width group of the inception family is read from the norm the official code thresholds
(snap-research/CAT ``utils/common.py`` ``shrink_model``):

- ``stem``, ``down1``, ``trunk``: the norm after each downsampling conv (the trunk's is the last);
- each branch of each inception block: the norm after the branch's first conv;
- ``up1``, ``up2``: the norm after each ConvTranspose.

A channel survives when its |γ| is above the threshold; the outer groups keep at least
``min_channels`` (``--prune_cin_lb``) and every branch keeps at least one channel (the official code
drops a branch with none; an ArchSpec width is positive, so here its strongest channel stays). The
threshold is found by bisection between the smallest and the largest |γ| (the official search) and is
the smallest one whose network meets the target.

Removal (:func:`remove_channels`) keeps, per group, the channels of largest |γ|, permuting every
coupled tensor (:func:`gancompress.pruning.prune_generator`). It is exact when every norm that writes
a removed channel has γ = β = 0 there (the trunk is also written by each block's output norm): a
removed channel then carries 0 everywhere, except in a depthwise branch, where the depthwise conv's
bias and second norm give a removed channel a constant, which is folded into the branch's last bias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import BudgetError, ConfigError
from ...models import Generator
from ...pruning import prune_generator

OUTER_NORMS = {
    "stem": "stem_norm",
    "down1": "down1_norm",
    "trunk": "down2_norm",
    "up1": "up1_norm",
    "up2": "up2_norm",
}


def check_inception(generator: Generator) -> None:
    if generator.family != "inception":
        raise ConfigError(f"CAT prunes inception generators, not {generator.family!r}")
    if not generator.options.get("norm_affine"):
        raise ConfigError("CAT prunes by the norms' scales γ: the inception generator needs norm_affine=True")


def scale_norms(generator: Generator) -> dict[str, nn.Module]:
    """Width group → the norm whose |γ| decides its channels."""
    check_inception(generator)
    norms = {g: getattr(generator, n) for g, n in OUTER_NORMS.items()}
    for i, block in enumerate(generator.blocks):
        for kind, branches in (("res", block.res), ("dw", block.dw)):
            for name, branch in zip(generator.branch_groups(i, kind), branches):
                norms[name] = branch.norm1
    return norms


def scales(generator: Generator) -> dict[str, torch.Tensor]:
    """Width group → |γ| of its channels (detached, on the CPU)."""
    return {g: norm.weight.detach().abs().float().cpu() for g, norm in scale_norms(generator).items()}


def widths_at(generator: Generator, threshold: float, min_channels: int) -> ArchSpec:
    """The widths that survive ``threshold`` (with the lower bounds), as an ArchSpec."""
    s = scales(generator)
    widths = []
    for group in generator.width_groups:
        alive = int((s[group.name] > threshold).sum())
        floor = min_channels if group.name in OUTER_NORMS else 1
        widths.append(max(alive, min(floor, s[group.name].numel())))
    return ArchSpec(generator.family, tuple(widths))


def search_threshold(
    generator: Generator,
    macs: Callable[[ArchSpec], int],
    target: float,
    min_channels: int,
    tolerance: float = 1e-3,
    max_iterations: int = 200,
) -> dict[str, Any]:
    """The smallest |γ| threshold whose pruned network costs at most ``target`` paper MACs.

    Bisection as the official ``shrink_model``: between the smallest and the largest |γ|, until the
    bracket is within ``tolerance`` of its lower end and the network meets the target.
    """
    values = torch.cat(list(scales(generator).values()))
    lo, hi = float(values.min()), float(values.max())
    floor = widths_at(generator, hi, min_channels)
    if macs(floor) > target:
        raise BudgetError(
            f"MACs target {target:.4g} is below the smallest network CAT's pruning can give ({floor}: "
            f"{macs(floor):.4g} MACs, {min_channels} channels per outer layer and one per branch); raise "
            "the target or lower prune.min_channels"
        )
    if macs(widths_at(generator, lo - 1.0, min_channels)) <= target:  # nothing needs pruning
        arch = widths_at(generator, lo - 1.0, min_channels)
        return {"threshold": None, "arch": str(arch), "macs": macs(arch), "iterations": 0}
    iterations = 0
    while hi - lo > tolerance * max(lo, 1e-12) and iterations < max_iterations:
        mid = (lo + hi) / 2
        if macs(widths_at(generator, mid, min_channels)) > target:
            lo = mid
        else:
            hi = mid
        iterations += 1
    arch = widths_at(generator, hi, min_channels)  # hi always meets the target
    return {"threshold": hi, "arch": str(arch), "macs": macs(arch), "iterations": iterations}


def keep_indices(generator: Generator, arch: ArchSpec) -> dict[str, torch.Tensor]:
    """Per group, the channels of largest |γ|, as many as ``arch`` keeps (sorted)."""
    s = scales(generator)
    widths = dict(zip((g.name for g in generator.width_groups), arch.widths))
    return {name: torch.sort(torch.argsort(s[name], descending=True)[: widths[name]]).values for name in s}


@torch.no_grad()
def _dw_constants(generator: Generator, keep: dict[str, torch.Tensor]) -> dict[tuple[int, int], torch.Tensor]:
    """(block, dw branch) → the constant the removed channels of that branch add to the block's sum."""
    out = {}
    for i, block in enumerate(generator.blocks):
        for j, (name, branch) in enumerate(zip(generator.branch_groups(i, "dw"), block.dw)):
            n = branch.depthwise.out_channels
            removed = torch.ones(n, dtype=torch.bool)
            removed[keep[name]] = False
            if not removed.any():
                continue
            # a removed channel is 0 after its first norm (γ = β = 0), so the depthwise conv gives its bias
            bias = branch.depthwise.bias
            const = torch.zeros(n) if bias is None else bias.detach()
            was = branch.norm2.training
            norm = branch.norm2.eval()  # the constant as the network computes it at inference
            # 2×2 pixels: an instance norm needs more than one (a constant then gives its shift β)
            value = torch.relu(norm(const.view(1, n, 1, 1).expand(1, n, 2, 2).contiguous()))[0, :, 0, 0]
            norm.train(was)
            value = value * removed
            w = branch.conv2.weight.detach()[:, :, 0, 0]  # (trunk, hidden)
            out[(i, j)] = w @ value
    return out


@torch.no_grad()
def remove_channels(generator: Generator, arch: ArchSpec) -> Generator:
    """The plain inception network at ``arch`` keeping each group's channels of largest |γ|.

    Example:
        >>> small = remove_channels(teacher, ArchSpec.parse("inception", found["arch"]))
    """
    check_inception(generator)
    spec = generator.parse_arch(arch)
    keep = keep_indices(generator, spec)
    device = next(generator.parameters()).device
    generator.cpu()
    constants = _dw_constants(generator, keep)
    pruned = prune_generator(generator, keep)
    generator.to(device)
    trunk = keep["trunk"]  # the kept trunk channels come first, in this order
    for (i, j), c in constants.items():
        branch, block, c = pruned.blocks[i].dw[j], pruned.blocks[i], c[trunk]
        if branch.conv2.bias is not None:
            branch.conv2.bias.add_(c.to(branch.conv2.bias.dtype))
        elif getattr(block.out_norm, "running_mean", None) is not None:
            block.out_norm.running_mean.sub_(c.to(block.out_norm.running_mean.dtype))
        # else: an instance or train-mode batch norm subtracts every per-channel constant itself
    return pruned.to(device)


@torch.no_grad()
def official_init_(generator: nn.Module, gain: float = 0.02, seed: int = 0) -> None:
    """Re-initialise as the official trainer does after pruning (``init_net``, ``normal`` init).

    Conv and ConvTranspose weights N(0, gain), their biases 0, BatchNorm scales N(1, gain) and shifts
    0; InstanceNorm scales are kept (the official ``init_weights`` matches BatchNorm only). Drawn from
    a generator seeded by ``seed``, so a resumed run starts from the same weights.
    """
    rng = torch.Generator().manual_seed(seed)
    for m in generator.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.weight.copy_(torch.randn(m.weight.shape, generator=rng) * gain)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            m.weight.copy_(1 + torch.randn(m.weight.shape, generator=rng) * gain)
            m.bias.zero_()
