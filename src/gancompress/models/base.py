"""The generator base class shared by every family.

A family is one class whose per-layer widths are data (an :class:`ArchSpec`). The same class is the
teacher (full widths), the once-for-all supernet (full widths, called with a narrower ``arch``) and
any exported subnet (built at the narrower widths). ``forward(x, arch=None, features=())`` never
stores the active widths on a module.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..arch import ArchSpec, WidthGroup, as_arch
from ..errors import ArchSpecError, ConfigError
from ..layers.elastic import ElasticConvTranspose2d, segment_index


class Generator(nn.Module):
    """Base class of every generator family.

    Subclasses set ``family`` and implement ``width_groups``, ``_forward`` and ``example_input``.
    Constructor keyword arguments other than ``arch`` are the family's options; they are recorded so
    the model can be rebuilt from its config alone.
    """

    family: ClassVar[str] = ""
    #: names of the intermediate tensors used for feature distillation, in network order
    feature_points: ClassVar[tuple[str, ...]] = ()

    def __init__(self, arch: ArchSpec | str | None, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = dict(options)
        self.arch = self.parse_arch(arch)

    # -- widths ----------------------------------------------------------------------------------
    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        raise NotImplementedError

    def default_arch(self) -> ArchSpec:
        base = self.options.get("base_width", 64)
        return ArchSpec(self.family, tuple(base for _ in self.width_groups))

    def parse_arch(self, arch: ArchSpec | str | None) -> ArchSpec:
        """Normalise ``arch`` (string, spec or None) and check it against this family's groups."""
        spec = as_arch(self.family, arch, self.default_arch())
        spec.check(self.width_groups)
        return spec

    def channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        """Real channel count of each width group for ``arch`` (default: this network's own)."""
        spec = self.arch if arch is None else self.parse_arch(arch)
        if spec is not self.arch and not spec.fits_within(self.arch):
            raise ArchSpecError(f"arch {spec} is wider than this network ({self.arch}) somewhere")
        return spec.channels(self.width_groups)

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        """Channel count at each distillation feature point for ``arch``."""
        raise NotImplementedError

    def follows_width(self, key: str, dim: int) -> bool:
        """True when dimension ``dim`` of tensor ``key`` has its own channels whose count follows a
        width group without carrying that group's channels (GauGAN's SPADE hidden width): pruning
        keeps their leading channels instead of permuting them with the group."""
        return False

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, arch: ArchSpec | str | None = None, features: Sequence[str] = (), **kwargs: Any
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Translate ``x``; with ``arch``, run the subnet of those widths on the shared weights.

        With ``features`` (names from ``feature_points``), also return ``{name: tensor}``.
        """
        unknown = set(features) - set(self.feature_points)
        if unknown:
            raise ConfigError(
                f"unknown feature point(s) {sorted(unknown)} for {self.family}; known: {list(self.feature_points)}"
            )
        ch = self.channels(arch)
        feats: dict[str, torch.Tensor] = {}
        out = self._forward(x, ch, feats, set(features), **kwargs)
        if features:
            return out, {name: feats[name] for name in features}
        return out

    def _forward(
        self,
        x: torch.Tensor,
        ch: dict[str, int],
        feats: dict[str, torch.Tensor],
        want: set[str],
        **kwargs: Any,
    ) -> torch.Tensor:
        raise NotImplementedError

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        """A deterministic input of the family's usual shape (for profiling and export)."""
        raise NotImplementedError

    @property
    def default_size(self) -> tuple[int, int]:
        return (256, 256)

    # -- config and subnets ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"family": self.family, "arch": str(self.arch), "options": dict(self.options)}

    @classmethod
    def option_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters
        return [n for n in params if n not in ("self", "arch")]

    @classmethod
    def from_options(cls, arch: ArchSpec | str | None, options: dict[str, Any]) -> Generator:
        """Build from recorded options, with an error that names unknown or mistyped fields."""
        known = cls.option_names()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for generator {cls.family!r}; known: {known}")
        try:
            return cls(arch=arch, **options)
        except TypeError as exc:
            raise ConfigError(f"bad options for generator {cls.family!r}: {exc}") from None

    def extract_subnet(self, arch: ArchSpec | str) -> Generator:
        """A plain network of this family at ``arch``, holding the first channels of these weights.

        The result gives exactly the output of ``self(x, arch=arch)``.
        """
        spec = self.parse_arch(arch)
        if not spec.fits_within(self.arch):
            raise ArchSpecError(f"arch {spec} is wider than this network ({self.arch}) somewhere")
        sub = type(self).from_options(spec, self.options)
        copy_sliced_weights(self, sub)
        return sub.train(self.training)


def copy_sliced_weights(full: nn.Module, sub: nn.Module) -> None:
    """Copy into ``sub`` the leading channels of every tensor of ``full`` (modules matched by name)."""
    full_modules = dict(full.named_modules())
    with torch.no_grad():
        for name, dst_module in sub.named_modules():
            if name not in full_modules:
                raise ArchSpecError(f"subnet module {name!r} has no counterpart in the full network")
            src_module = full_modules[name]
            tensors = list(dst_module.named_parameters(recurse=False)) + list(
                dst_module.named_buffers(recurse=False)
            )
            for tname, dst in tensors:
                src = getattr(src_module, tname)
                if (
                    isinstance(dst_module, ElasticConvTranspose2d)
                    and tname == "weight"
                    and dst_module.in_splits
                ):
                    src = src.index_select(
                        0, segment_index(src_module.in_splits, dst_module.in_splits, src.device)
                    )
                if dst.dim() == 0:
                    dst.copy_(src)
                    continue
                dst.copy_(src[tuple(slice(0, n) for n in dst.shape)])
