"""ArchSpec: the per-layer widths of a generator, as data.

A generator family declares its width groups (a name and a multiplier each). An ArchSpec holds one
number per group at the scale of ``base_width`` (ngf), the compact form GAN Compression writes as
``16_16_32_16_32_32_16_16``; the real channel count of group ``i`` is ``widths[i] * multiplier[i]``.
The full-width teacher of a family with base width 64 is therefore ``64_64_..._64``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ArchSpecError


@dataclass(frozen=True)
class WidthGroup:
    """One tunable width of a family: its name and the factor that turns it into channels."""

    name: str
    multiplier: int
    doc: str = ""


@dataclass(frozen=True)
class ArchSpec:
    """Per-layer-group widths of one generator family.

    Example:
        >>> spec = ArchSpec.parse("resnet", "16_16_32_16_32_32_16_16")
        >>> str(spec)
        '16_16_32_16_32_32_16_16'
    """

    family: str
    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise ArchSpecError(f"ArchSpec.family must be a non-empty string, got {self.family!r}")
        widths = tuple(self.widths)
        for i, w in enumerate(widths):
            if isinstance(w, bool) or not isinstance(w, int):
                raise ArchSpecError(f"ArchSpec width {i} of {self.family!r} must be an int, got {w!r}")
            if w <= 0:
                raise ArchSpecError(f"ArchSpec width {i} of {self.family!r} must be positive, got {w}")
        object.__setattr__(self, "widths", widths)

    @classmethod
    def parse(cls, family: str, text: str) -> ArchSpec:
        """Read the compact ``a_b_c`` form."""
        if not isinstance(text, str) or not text.strip():
            raise ArchSpecError(f"architecture string for {family!r} is empty")
        parts = text.strip().split("_")
        try:
            widths = tuple(int(p) for p in parts)
        except ValueError:
            raise ArchSpecError(
                f"architecture string {text!r} for {family!r} must be integers joined by '_'"
            ) from None
        return cls(family, widths)

    def __str__(self) -> str:
        return "_".join(str(w) for w in self.widths)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "widths": list(self.widths), "string": str(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        if not isinstance(data, dict):
            raise ArchSpecError(
                f"arch must be an object with 'family' and 'widths', got {type(data).__name__}"
            )
        missing = {"family", "widths"} - set(data)
        if missing:
            raise ArchSpecError(f"arch is missing field(s): {', '.join(sorted(missing))}")
        widths = data["widths"]
        if not isinstance(widths, list | tuple):
            raise ArchSpecError(f"arch.widths must be a list of ints, got {widths!r}")
        return cls(data["family"], tuple(widths))

    def channels(self, groups: tuple[WidthGroup, ...]) -> dict[str, int]:
        """Real channel count of every group, checked against the family's groups."""
        self.check(groups)
        return {g.name: w * g.multiplier for g, w in zip(groups, self.widths)}

    def check(self, groups: tuple[WidthGroup, ...]) -> None:
        if len(self.widths) != len(groups):
            names = "_".join(g.name for g in groups)
            raise ArchSpecError(
                f"{self.family!r} architecture {str(self)!r} has {len(self.widths)} widths; "
                f"this family takes {len(groups)} ({names})"
            )

    def fits_within(self, other: ArchSpec) -> bool:
        """True when every width is at most the other's (a subnet of ``other``)."""
        return self.family == other.family and all(a <= b for a, b in zip(self.widths, other.widths))


def as_arch(family: str, arch: ArchSpec | str | None, default: ArchSpec) -> ArchSpec:
    """Normalise a user-given architecture (string, ArchSpec or None) for ``family``."""
    if arch is None:
        return default
    if isinstance(arch, str):
        arch = ArchSpec.parse(family, arch)
    if not isinstance(arch, ArchSpec):
        raise ArchSpecError(
            f"arch must be an ArchSpec or a string like '16_16_32', got {type(arch).__name__}"
        )
    if arch.family != family:
        raise ArchSpecError(f"arch {str(arch)!r} is for family {arch.family!r}, not {family!r}")
    return arch
