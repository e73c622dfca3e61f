"""A once-for-all search space as plain data: the width choices of every width group.

Written per group at the scale of ``base_width`` (the numbers of an :class:`ArchSpec`), e.g. the
official ResNet ``channels-48`` space; the official named spaces (``channels-64-pix2pix``,
``channels-64-cycleGAN``, GauGAN's ``channels-64`` …) are accepted by name. The compact string form joins a group's choices with ``|`` and
the groups with ``_``::

    48|32_48|32_48|40|32_48|40|32_48|40|32_48|40|32_48|32|24|16_48|32|24|16

In a recipe mapping, a choice written as a float in (0, 1] is a fraction of the teacher's width in
that group (rounded, at least 1), and the key ``"*"`` gives the choices of every group not named, so
one recipe serves teachers of any width: ``{"*": [0.75, 0.5, 0.25], "trunk": [0.5, 0.375, 0.25]}``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ...arch import ArchSpec
from ...errors import ArchSpecError, ConfigError
from ...models.base import Generator

WEIGHT_STRATEGIES = ("arithmetic", "geometric")

_P2P = (64, 56, 48, 40, 32, 24, 16)
_SP64 = (64, 48, 40, 32)
_SP64U = (64, 48, 40, 32, 24)
#: the official code's named spaces (configs/{resnet,spade,munit}_configs.py), per family
OFFICIAL_SPACES: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "resnet": {
        "channels-48": ((48, 32), (48, 32), (48, 40, 32), (48, 40, 32), (48, 40, 32), (48, 40, 32))
        + ((48, 32, 24, 16),) * 2,
        "channels-32": ((32, 24, 16),) * 8,
        "channels-64-cycleGAN": ((64, 48, 32, 24, 16),) * 8,
        "channels-64-pix2pix": (_P2P,) * 8,
    },
    "spade": {
        "channels-48": ((48, 40, 32),) * 5 + ((48, 40, 32, 24),) * 3,
        "channels-64": (_SP64,) * 5 + (_SP64U,) * 3,
        "channels-64-coco": (_SP64U,) * 8,
    },
    "munit": {"channels-64": (_P2P,) * 10},
}


@dataclass(frozen=True)
class SearchSpace:
    """Width choices per width group of one generator family (each sorted, largest first).

    Example:
        >>> space = SearchSpace.parse("resnet", RESNET_GROUP_NAMES, "16|8_16_16_16_16_16_16_16|8")
        >>> space.size, str(space.largest()), str(space.smallest())
        (4, '16_16_16_16_16_16_16_16', '8_16_16_16_16_16_16_8')
    """

    family: str
    groups: tuple[str, ...]
    choices: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        groups = tuple(self.groups)
        choices = tuple(tuple(sorted(set(c), reverse=True)) for c in self.choices)
        if len(groups) != len(choices):
            raise ArchSpecError(
                f"search space for {self.family!r}: {len(choices)} choice lists for {len(groups)} width groups"
            )
        for name, options in zip(groups, choices):
            if not options:
                raise ArchSpecError(f"search space for {self.family!r}: group {name!r} has no choices")
            for w in options:
                if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                    raise ArchSpecError(
                        f"search space for {self.family!r}: group {name!r} choice {w!r} must be a positive int"
                    )
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "choices", choices)

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls,
        family: str,
        groups: Sequence[str],
        mapping: Mapping[str, Sequence[int | float]],
        where: str = "search_space",
        reference: ArchSpec | None = None,
    ) -> SearchSpace:
        """Build from ``{group: [choices]}``: every group named once, or covered by ``"*"``.

        Float choices in (0, 1] are fractions of ``reference``'s width in that group (the teacher).
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{where}: expected a mapping of width group to choices, got {mapping!r}")
        unknown = sorted(set(mapping) - set(groups) - {"*"})
        missing = [g for g in groups if g not in mapping and "*" not in mapping]
        if unknown or missing:
            raise ConfigError(
                f"{where}: groups of {family!r} are {list(groups)}; unknown {unknown}, missing {missing}"
            )
        choices = []
        for i, g in enumerate(groups):
            value = mapping[g] if g in mapping else mapping["*"]
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{where}.{g}: expected a list of widths, got {value!r}")
            widths = []
            for c in value:
                if isinstance(c, float):
                    if reference is None or not 0 < c <= 1:
                        raise ConfigError(
                            f"{where}.{g}: {c!r} is not a width; a fraction of the teacher's width "
                            "must lie in (0, 1]"
                        )
                    c = max(1, round(c * reference.widths[i]))
                widths.append(c)
            choices.append(tuple(widths))
        try:
            return cls(family, tuple(groups), tuple(choices))
        except ArchSpecError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def for_generator(
        cls,
        generator: Generator,
        spec: Mapping[str, Sequence[int | float]] | str,
        where: str = "search_space",
    ) -> SearchSpace:
        """The space of ``generator``'s family from a mapping or the compact string form (fractions
        in a mapping are of ``generator``'s widths)."""
        groups = tuple(g.name for g in generator.width_groups)
        if isinstance(spec, str):
            return cls.named(generator.family, groups, spec) or cls.parse(generator.family, groups, spec)
        return cls.from_mapping(generator.family, groups, spec, where, reference=generator.arch)

    @classmethod
    def named(cls, family: str, groups: Sequence[str], name: str) -> SearchSpace | None:
        """One of the official code's named spaces (e.g. ``channels-64-pix2pix``), else None."""
        choices = OFFICIAL_SPACES.get(family, {}).get(name.strip())
        if choices is None:
            if name.strip().startswith("channels-"):
                known = sorted(OFFICIAL_SPACES.get(family, {}))
                raise ConfigError(f"unknown search space {name!r} for {family!r}; named ones: {known}")
            return None
        return cls(family, tuple(groups), choices)

    @classmethod
    def parse(cls, family: str, groups: Sequence[str], text: str) -> SearchSpace:
        """Read the compact ``48|32_48|32_…`` form."""
        if not isinstance(text, str) or not text.strip():
            raise ArchSpecError(f"search space string for {family!r} is empty")
        parts = text.strip().split("_")
        if len(parts) != len(groups):
            raise ArchSpecError(
                f"search space {text!r} has {len(parts)} groups; {family!r} has {len(groups)} ({'_'.join(groups)})"
            )
        try:
            choices = tuple(tuple(int(c) for c in part.split("|")) for part in parts)
        except ValueError:
            raise ArchSpecError(
                f"search space {text!r}: each group is integers joined by '|', groups joined by '_'"
            ) from None
        return cls(family, tuple(groups), choices)

    def __str__(self) -> str:
        return "_".join("|".join(str(c) for c in options) for options in self.choices)

    def to_mapping(self) -> dict[str, list[int]]:
        return {g: list(c) for g, c in zip(self.groups, self.choices)}

    # -- data operations -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        return math.prod(len(c) for c in self.choices)

    def __len__(self) -> int:
        return self.size

    def largest(self) -> ArchSpec:
        return ArchSpec(self.family, tuple(c[0] for c in self.choices))

    def smallest(self) -> ArchSpec:
        return ArchSpec(self.family, tuple(c[-1] for c in self.choices))

    def sample(self, rng: random.Random) -> ArchSpec:
        """One width per group, each uniform over its choices (the paper's sampling rule)."""
        return ArchSpec(self.family, tuple(rng.choice(c) for c in self.choices))

    def sample_weighted(
        self, rng: random.Random, weight: float = 1.0, strategy: str = "arithmetic"
    ) -> ArchSpec:
        """One width per group, smaller widths drawn more often (``evolution_search.py
        --weighted_sample W --weight_strategy S``, which only the first generation uses).

        The choices (largest first) get weights ``(n-1)/(W-1), +1, +2, …`` (arithmetic) or ``1, W, W², …``
        (geometric); ``W <= 1`` is uniform.
        """
        if strategy not in WEIGHT_STRATEGIES:
            raise ConfigError(f"weight strategy must be one of {list(WEIGHT_STRATEGIES)}, got {strategy!r}")
        if weight <= 1.0001:  # the official threshold
            return self.sample(rng)
        widths = []
        for c in self.choices:
            if strategy == "arithmetic":
                start = (len(c) - 1) / (weight - 1)
                weights = [start + i for i in range(len(c))]
            else:
                weights = [weight**i for i in range(len(c))]
            widths.append(rng.choices(c, weights=weights)[0])
        return ArchSpec(self.family, tuple(widths))

    def enumerate(self) -> Iterator[ArchSpec]:
        """Every architecture, largest first in lexicographic order of the groups."""
        for widths in itertools.product(*self.choices):
            yield ArchSpec(self.family, tuple(widths))

    def __contains__(self, arch: object) -> bool:
        if not isinstance(arch, ArchSpec) or arch.family != self.family:
            return False
        if len(arch.widths) != len(self.choices):
            return False
        return all(w in c for w, c in zip(arch.widths, self.choices))

    def check_fits(self, generator: Generator) -> None:
        """Raise when the space's largest architecture is wider than ``generator`` somewhere."""
        names = tuple(g.name for g in generator.width_groups)
        if generator.family != self.family or names != self.groups:
            raise ArchSpecError(
                f"search space is for {self.family!r} groups {list(self.groups)}; "
                f"the network is {generator.family!r} with groups {list(names)}"
            )
        if not self.largest().fits_within(generator.arch):
            raise ArchSpecError(
                f"search space's largest arch {self.largest()} is wider than the network ({generator.arch})"
            )
