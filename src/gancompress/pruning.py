"""Channel pruning that keeps every coupled layer consistent.

Which tensors (and which of their dimensions) carry the channels of a width group is not written
down per family: it is *discovered* by building the same family with that group one unit narrower
(on the meta device, so nothing is allocated) and comparing state-dict shapes. Every tensor whose
dimension shrank is coupled to the group along that dimension — producer convs, the norms after
them, the residual trunk's every block, the U-Net skip segment of the next upsampling conv, SPADE's
modulation convs, MUNIT's AdaIN heads. Pruning then permutes all of them the same way, so the
channels to keep come first, and takes the leading-channel subnet with ``extract_subnet``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .arch import ArchSpec
from .errors import ArchSpecError, ConfigError
from .models.base import Generator


@dataclass(frozen=True)
class Coupling:
    """Tensor ``key`` holds ``segments`` consecutive blocks of the group's channels along ``dim``."""

    key: str
    dim: int
    segments: int
    producer: bool  # True when ``dim`` is the output-channel dim of a conv / linear weight


def _is_producer(module: nn.Module, param: str, dim: int) -> bool:
    if param != "weight":
        return False
    if isinstance(module, nn.ConvTranspose2d):
        return dim == 1
    if isinstance(module, nn.Conv2d | nn.Linear):
        return dim == 0
    return False


def coupled_tensors(generator: Generator) -> dict[str, list[Coupling]]:
    """For each width group, every tensor dimension that carries its channels."""
    if any(".parametrizations." in k for k in generator.state_dict()):
        raise ConfigError("remove spectral norm before pruning (generator.remove_spectral_norm())")
    base = generator.arch
    full = {k: tuple(v.shape) for k, v in generator.state_dict().items()}
    modules = dict(generator.named_modules())
    out: dict[str, list[Coupling]] = {}
    for i, group in enumerate(generator.width_groups):
        widths = list(base.widths)
        step = -1 if widths[i] > 1 else 1
        widths[i] += step
        with torch.device("meta"):
            probe = type(generator).from_options(ArchSpec(base.family, tuple(widths)), generator.options)
        delta = group.multiplier  # channels per unit of width
        channels = base.widths[i] * group.multiplier
        couplings = []
        for key, tensor in probe.state_dict().items():
            shape = tuple(tensor.shape)
            ref = full[key]
            for dim, (a, b) in enumerate(zip(ref, shape)):
                if a == b or generator.follows_width(key, dim):
                    continue
                diff = abs(a - b)
                if diff % delta or a % channels or a // channels != diff // delta:
                    raise ArchSpecError(
                        f"cannot tell how {key} (dim {dim}, size {a}) is coupled to width group {group.name!r}"
                    )
                mod_name, _, param = key.rpartition(".")
                couplings.append(
                    Coupling(key, dim, diff // delta, _is_producer(modules[mod_name], param, dim))
                )
        out[group.name] = couplings
    return out


def channel_importance(generator: Generator, group: str, kind: str = "l1") -> torch.Tensor:
    """Per-channel importance of a width group: the L1 magnitude of the filters that produce it.

    Example:
        >>> imp = channel_importance(mobile_teacher, "trunk")  # one value per trunk channel
    """
    if kind != "l1":
        raise ConfigError(f"unknown importance {kind!r}; known: l1")
    couplings = coupled_tensors(generator)
    if group not in couplings:
        raise ConfigError(f"unknown width group {group!r}; known: {list(couplings)}")
    state = generator.state_dict()
    channels = generator.channels()[group]
    total = torch.zeros(channels)
    producers = [c for c in couplings[group] if c.producer]
    if not producers:
        raise ConfigError(f"width group {group!r} has no producing layer to rank its channels by")
    for c in producers:
        t = state[c.key].detach().float().abs()
        per = t.transpose(0, c.dim).reshape(t.shape[c.dim], -1).sum(dim=1)
        total += per.reshape(c.segments, channels).sum(dim=0)
    return total


def permute_group_(generator: Generator, group: str, order: torch.Tensor) -> None:
    """Reorder the channels of ``group`` in place (a function-preserving change)."""
    couplings = coupled_tensors(generator)[group]
    channels = generator.channels()[group]
    order = torch.as_tensor(order, dtype=torch.long)
    if sorted(order.tolist()) != list(range(channels)):
        raise ConfigError(f"order for {group!r} must be a permutation of range({channels})")
    state = generator.state_dict()
    with torch.no_grad():
        for c in couplings:
            t = state[c.key]
            index = torch.cat([order + s * channels for s in range(c.segments)]).to(t.device)
            t.copy_(t.index_select(c.dim, index))


def prune_generator(generator: Generator, keep: Mapping[str, torch.Tensor | list[int]]) -> Generator:
    """A plain generator that keeps, for each named width group, the given channel indices.

    Groups not named keep all their channels. Each kept count must be a multiple of the group's
    multiplier (the ArchSpec counts widths at the scale of base_width). The input is not modified.

    Example:
        >>> small = prune_generator(g, {"trunk": torch.arange(64)})
    """
    groups = {g.name: g for g in generator.width_groups}
    unknown = sorted(set(keep) - set(groups))
    if unknown:
        raise ConfigError(f"unknown width group(s) {unknown}; known: {list(groups)}")
    work = copy.deepcopy(generator)
    widths = list(generator.arch.widths)
    names = [g.name for g in generator.width_groups]
    channels = generator.channels()
    for name, idx in keep.items():
        idx = torch.as_tensor(idx, dtype=torch.long).flatten()
        n, m = idx.numel(), groups[name].multiplier
        if n == 0 or n % m:
            raise ArchSpecError(f"group {name!r} keeps {n} channels; it must keep a positive multiple of {m}")
        if len(set(idx.tolist())) != n or idx.min() < 0 or idx.max() >= channels[name]:
            raise ArchSpecError(
                f"group {name!r}: channel indices must be distinct and in [0, {channels[name]})"
            )
        kept = set(idx.tolist())
        rest = torch.tensor([c for c in range(channels[name]) if c not in kept], dtype=torch.long)
        permute_group_(work, name, torch.cat([idx, rest]))
        widths[names.index(name)] = n // m
    return work.extract_subnet(ArchSpec(generator.arch.family, tuple(widths)))


def prune_by_importance(
    generator: Generator, arch: ArchSpec | str, kind: str = "l1", order: str = "index"
) -> Generator:
    """Keep the most important channels of every group so that the result has widths ``arch``.

    ``order="index"`` keeps them in their original order; ``order="importance"`` puts the most
    important first, so that a slimmable network's narrower subnets (the first channels of every
    group) are made of the most important ones (a supernet started from a trained network).
    """
    if order not in ("index", "importance"):
        raise ConfigError(f"order must be 'index' or 'importance', got {order!r}")
    spec = generator.parse_arch(arch)
    if not spec.fits_within(generator.arch):
        raise ArchSpecError(f"arch {spec} is wider than the network ({generator.arch}) somewhere")
    keep = {}
    for group, width in zip(generator.width_groups, spec.widths):
        n = width * group.multiplier
        imp = channel_importance(generator, group.name, kind)
        top = torch.argsort(imp, descending=True)[:n]
        keep[group.name] = top if order == "importance" else torch.sort(top).values
    return prune_generator(generator, keep)
