"""DHP's hypernetwork over a generator family: every conv kernel generated from per-group latents.

Differentiable meta pruning (Li et al., ECCV 2020) gives each layer a latent vector with one entry
per output channel. The kernel of a layer is generated from its own latent ``z_l`` and the latent of
its input ``z_{l-1}`` by three element-wise layers:

* latent layer: ``Z = z_l z_{l-1}^T + B0`` (one value per (output, input) channel pair);
* embedding layer: each ``Z_ij`` becomes an m-vector ``Z_ij * w1_ij + b1_ij``;
* explicit layer: each m-vector becomes the k×k kernel ``W2_ij @ e_ij + b2_ij``.

Here the latents are attached to *width groups*, not to layers: every tensor dimension that carries
a group's channels (found by :func:`gancompress.pruning.coupled_tensors`) reads the same latent, so
the residual trunk written by every block, or a U-Net skip read by a decoder conv, is pruned as one.
A dimension that carries no group (image channels, a depthwise kernel's single input channel) reads
a fixed vector of ones and is never pruned. Norms and conv biases stay ordinary parameters.

The generator is run *physically pruned*: the kernels of the kept channels only are generated and
the family's plain network at the pruned widths runs on them, so what trains is exactly what
:meth:`HyperGenerator.extract` hands on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ...arch import ArchSpec
from ...errors import ConfigError
from ...models import Generator
from ...pruning import Coupling, coupled_tensors, prune_generator

SUPPORTED_FAMILIES = ("resnet", "unet")


@dataclass(frozen=True)
class DimLatent:
    """Which latent drives one dimension of a kernel: a width group (``segments`` copies) or ones."""

    group: str | None
    size: int
    segments: int = 1


@dataclass(frozen=True)
class KernelSpec:
    """A generated conv kernel: its state-dict key, layout and the latents of its two channel dims."""

    key: str
    transposed: bool
    out: DimLatent
    inp: DimLatent
    kernel_size: tuple[int, int]


class HyperKernel(nn.Module):
    """DHP's hypernetwork of one kernel of ``out × in`` channels and ``k×k`` taps.

    Parameters are laid out (out, in, …). Initialisation follows the DHP code: the embedding weight
    uniform in ±√3, the explicit weight hyperfan-in (±√(3 / (m · in · k²))), zero biases, so the
    generated kernel has a fan-in variance when the latents are of unit scale.

    Example:
        >>> hk = HyperKernel(8, 4, (3, 3), embedding_dim=8)
        >>> hk(torch.randn(8), torch.randn(4)).shape
        torch.Size([8, 4, 3, 3])
    """

    def __init__(self, out_channels: int, in_channels: int, kernel_size: tuple[int, int], embedding_dim: int):
        super().__init__()
        if embedding_dim < 1:
            raise ConfigError(f"hypernet.embedding_dim must be positive, got {embedding_dim}")
        o, i, m = out_channels, in_channels, embedding_dim
        taps = kernel_size[0] * kernel_size[1]
        self.kernel_size = tuple(kernel_size)
        bound1 = math.sqrt(3.0)
        bound2 = math.sqrt(3.0 / (m * i * taps))
        self.weight1 = nn.Parameter(torch.empty(o, i, m).uniform_(-bound1, bound1))
        self.weight2 = nn.Parameter(torch.empty(o, i, taps, m).uniform_(-bound2, bound2))
        self.bias0 = nn.Parameter(torch.zeros(o, i))
        self.bias1 = nn.Parameter(torch.zeros(o, i, m))
        self.bias2 = nn.Parameter(torch.zeros(o, i, taps))

    def forward(
        self,
        z_out: torch.Tensor,
        z_in: torch.Tensor,
        out_index: torch.Tensor | None = None,
        in_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The kernel (out, in, kh, kw) for the latents; with indices, only those rows and columns."""
        params = [self.bias0, self.weight1, self.bias1, self.weight2, self.bias2]
        if out_index is not None:
            z_out = z_out.index_select(0, out_index)
            params = [p.index_select(0, out_index) for p in params]
        if in_index is not None:
            z_in = z_in.index_select(0, in_index)
            params = [p.index_select(1, in_index) for p in params]
        b0, w1, b1, w2, b2 = params
        latent = torch.outer(z_out, z_in) + b0  # latent layer
        embedded = latent.unsqueeze(-1) * w1 + b1  # embedding layer: (o, i, m)
        kernel = torch.matmul(w2, embedded.unsqueeze(-1)).squeeze(-1) + b2  # explicit layer: (o, i, k²)
        return kernel.reshape(z_out.numel(), z_in.numel(), *self.kernel_size)


def soft_threshold_(tensor: torch.Tensor, amount: float) -> None:
    """The proximal operator of ``amount · ||·||_1``: ``sign(z) · max(|z| − amount, 0)``, in place."""
    with torch.no_grad():
        tensor.copy_(torch.sign(tensor) * torch.clamp(tensor.abs() - amount, min=0.0))


def _module_key(key: str) -> str:
    # ModuleDict names cannot hold dots; state-dict keys of the families never hold dashes.
    return key.replace(".", "-")


def kernel_specs(generator: Generator, couplings: Mapping[str, list[Coupling]]) -> dict[str, KernelSpec]:
    """Every conv / transposed-conv kernel of ``generator`` with the latents of its channel dims."""
    by_key: dict[str, dict[int, tuple[str, int]]] = {}
    for group, items in couplings.items():
        for c in items:
            dims = by_key.setdefault(c.key, {})
            if c.dim in dims:
                raise ConfigError(
                    f"{c.key} dim {c.dim} carries both width groups {dims[c.dim][0]!r} and {group!r}; "
                    "CoroNetGAN needs one latent per dimension"
                )
            dims[c.dim] = (group, c.segments)
    specs = {}
    for name, module in generator.named_modules():
        if not isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            continue
        key = f"{name}.weight"
        transposed = isinstance(module, nn.ConvTranspose2d)
        depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
        if module.groups != 1 and not depthwise:
            raise ConfigError(
                f"{key}: grouped (non-depthwise) convolutions are not supported by the hypernetwork"
            )
        shape = tuple(module.weight.shape)
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        dims = by_key.get(key, {})
        out, inp = (_dim_latent(dims, shape, d) for d in (out_dim, in_dim))
        specs[key] = KernelSpec(key, transposed, out, inp, (shape[2], shape[3]))
    return specs


def _dim_latent(dims: Mapping[int, tuple[str, int]], shape: tuple[int, ...], dim: int) -> DimLatent:
    if dim in dims:
        group, segments = dims[dim]
        return DimLatent(group, shape[dim], segments)
    return DimLatent(None, shape[dim])


class HyperGenerator(nn.Module):
    """A generator family whose conv kernels all come from a DHP hypernetwork, pruned by channel masks.

    ``base`` is the family's network at full widths: its norms and conv biases are trained as
    ordinary parameters, its conv weights are replaced by generated ones (and kept frozen, unused).
    One latent per width group; one boolean keep-mask per group (a buffer, so it is checkpointed).

    Example:
        >>> hyper = HyperGenerator(create_generator("resnet", base_width=8), embedding_dim=8)
        >>> y = hyper(x)                          # runs the plain network at the current pruned widths
        >>> plain = hyper.extract()               # kernels generated once, pruned channels removed
    """

    def __init__(self, base: Generator, embedding_dim: int = 8, latent_std: float = 1.0) -> None:
        super().__init__()
        if base.family not in SUPPORTED_FAMILIES:
            raise ConfigError(
                f"CoroNetGAN supports the families {list(SUPPORTED_FAMILIES)}, not {base.family!r}"
            )
        if latent_std <= 0:
            raise ConfigError(f"hypernet.latent_std must be positive, got {latent_std}")
        self.base = base
        self.couplings = coupled_tensors(base)
        self.specs = kernel_specs(base, self.couplings)
        for key in self.specs:
            self._base_tensor(key).requires_grad_(False)
        channels = base.channels()
        self.multipliers = {g.name: g.multiplier for g in base.width_groups}
        self.latents = nn.ParameterDict(
            {g: nn.Parameter(torch.randn(c) * latent_std) for g, c in channels.items()}
        )
        self.kernels = nn.ModuleDict(
            {
                _module_key(k): HyperKernel(s.out.size, s.inp.size, s.kernel_size, embedding_dim)
                for k, s in self.specs.items()
            }
        )
        self.masks = _Masks(channels)
        self._by_key: dict[str, list[tuple[str, Coupling]]] = {}
        for group, items in self.couplings.items():
            for c in items:
                self._by_key.setdefault(c.key, []).append((group, c))
        self._template: tuple[str, torch.device, Generator] | None = None

    # -- structure ---------------------------------------------------------------------------------
    @property
    def family(self) -> str:
        return self.base.family

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.base.width_groups)

    def hypernet_parameters(self) -> list[nn.Parameter]:
        """Parameters of the hypernetwork proper (not the latents)."""
        return list(self.kernels.parameters())

    def main_parameters(self) -> list[nn.Parameter]:
        """Trained parameters of the generator itself: norms and biases (conv weights are generated)."""
        return [p for p in self.base.parameters() if p.requires_grad]

    def _base_tensor(self, key: str) -> torch.Tensor:
        module_name, _, name = key.rpartition(".")
        return getattr(self.base.get_submodule(module_name), name)

    # -- masks and widths --------------------------------------------------------------------------
    def mask(self, group: str) -> torch.Tensor:
        return self.masks.get(group)

    def set_mask(self, group: str, mask: torch.Tensor) -> None:
        """Replace the keep-mask of ``group`` (its count must be a positive multiple of the multiplier)."""
        mask = torch.as_tensor(mask, dtype=torch.bool).to(self.mask(group).device)
        m = self.multipliers[group]
        n = int(mask.sum())
        if mask.shape != self.mask(group).shape or n == 0 or n % m:
            raise ConfigError(f"group {group!r} must keep a positive multiple of {m} channels, got {n}")
        self.mask(group).copy_(mask)

    def keep_indices(self) -> dict[str, torch.Tensor]:
        """Sorted indices of the kept channels of every group."""
        return {g: torch.nonzero(self.mask(g)).flatten() for g in self.groups}

    def pruned_arch(self, masks: Mapping[str, torch.Tensor] | None = None) -> ArchSpec:
        """The ArchSpec of the network the masks describe (widths at the scale of base_width)."""
        widths = []
        for g in self.groups:
            mask = self.mask(g) if masks is None else masks[g]
            widths.append(int(mask.sum()) // self.multipliers[g])
        return ArchSpec(self.family, tuple(widths))

    # -- generation --------------------------------------------------------------------------------
    def _dim_latent(self, dim: DimLatent, device: torch.device) -> torch.Tensor:
        if dim.group is None:
            return torch.ones(dim.size, device=device)  # image channels / depthwise: fixed, never pruned
        z = self.latents[dim.group]
        return z.repeat(dim.segments) if dim.segments > 1 else z

    def _dim_index(self, dim: DimLatent, keep: Mapping[str, torch.Tensor] | None) -> torch.Tensor | None:
        if dim.group is None or keep is None:
            return None
        idx = keep[dim.group]
        full = dim.size // dim.segments
        if idx.numel() == full:
            return None
        return torch.cat([idx + s * full for s in range(dim.segments)])

    def kernel(self, key: str, keep: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The generated weight of conv ``key`` in its layer's layout; with ``keep``, the kept channels only."""
        spec = self.specs[key]
        device = self.latents[self.groups[0]].device
        weight = self.kernels[_module_key(key)](
            self._dim_latent(spec.out, device),
            self._dim_latent(spec.inp, device),
            self._dim_index(spec.out, keep),
            self._dim_index(spec.inp, keep),
        )
        return weight.transpose(0, 1) if spec.transposed else weight

    def _select(self, key: str, tensor: torch.Tensor, keep: Mapping[str, torch.Tensor]) -> torch.Tensor:
        for group, c in self._by_key.get(key, ()):
            idx = keep[group]
            full = tensor.shape[c.dim] // c.segments
            if idx.numel() == full:
                continue
            tensor = tensor.index_select(c.dim, torch.cat([idx + s * full for s in range(c.segments)]))
        return tensor

    def compact_state(self) -> dict[str, torch.Tensor]:
        """Every tensor of the pruned plain network: generated kernels, selected norms and biases."""
        keep = self.keep_indices()
        state = {}
        for key, tensor in list(self.base.named_parameters()) + list(self.base.named_buffers()):
            state[key] = self.kernel(key, keep) if key in self.specs else self._select(key, tensor, keep)
        return state

    def _network(self, arch: ArchSpec, device: torch.device) -> Generator:
        cached = self._template
        if cached is None or cached[0] != str(arch) or cached[1] != device:
            net = type(self.base).from_options(arch, self.base.options).to(device)
            # Kept out of the module tree: its tensors are always supplied by compact_state().
            self._template = (str(arch), device, net)
        return self._template[2]

    def forward(self, x: torch.Tensor, features: Sequence[str] = (), **kwargs: Any):
        """Run the pruned network on generated kernels (same signature as ``Generator.forward``)."""
        device = self.latents[self.groups[0]].device
        net = self._network(self.pruned_arch(), device)
        net.train(self.training)
        state = self.compact_state()
        out = functional_call(net, state, (x,), dict(features=tuple(features), **kwargs), strict=True)
        if self.training:
            self._write_back_buffers(state)
        return out

    @torch.no_grad()
    def _write_back_buffers(self, state: Mapping[str, torch.Tensor]) -> None:
        # BatchNorm updated the running statistics of the selected copies; store them in the full ones.
        keep = self.keep_indices()
        for key, full in self.base.named_buffers():
            compact = state[key]
            if compact is full or not full.is_floating_point():
                continue
            out = full
            for group, c in self._by_key.get(key, ()):
                idx = keep[group]
                n = full.shape[c.dim] // c.segments
                index = torch.cat([idx + s * n for s in range(c.segments)])
                out.index_copy_(c.dim, index, compact)

    # -- after pruning -----------------------------------------------------------------------------
    @torch.no_grad()
    def materialize(self) -> Generator:
        """The full-width plain generator holding the generated kernels (nothing removed yet)."""
        net = copy.deepcopy(self.base)
        state = net.state_dict()
        for key in self.specs:
            state[key] = self.kernel(key).detach()
        net.load_state_dict(state)
        for p in net.parameters():
            p.requires_grad_(True)
        return net.train(self.training)

    @torch.no_grad()
    def extract(self) -> Generator:
        """Generate the kernels once and remove the pruned channels: the plain pruned generator.

        Goes through :func:`gancompress.pruning.prune_generator`, so every coupled tensor (residual
        trunk, skip segments, norms, the next layer's input) loses the same channels.
        """
        return prune_generator(self.materialize(), self.keep_indices())


class _Masks(nn.Module):
    """One boolean keep-mask buffer per width group."""

    def __init__(self, channels: Mapping[str, int]) -> None:
        super().__init__()
        for group, c in channels.items():
            self.register_buffer(group, torch.ones(c, dtype=torch.bool))

    def get(self, group: str) -> torch.Tensor:
        return getattr(self, group)
