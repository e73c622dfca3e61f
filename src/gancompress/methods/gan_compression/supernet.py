"""The once-for-all supernet: the student generator at the search space's largest widths.

Every generator family is already width-elastic (``g(x, arch=S)`` runs the subnet S on the shared
first channels), so the supernet is not a separate class: it is the student at full width, trained by
:class:`~.distill.DistillTask` with an :class:`ArchSampler` that picks the widths of every step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...arch import ArchSpec
from ...errors import ArchSpecError, ConfigError
from ...models import Generator
from ...pruning import prune_by_importance
from ..common.teacher import plain_teacher  # noqa: F401  (re-exported)
from .search_space import SearchSpace


@dataclass(frozen=True)
class ArchSampler:
    """The widths trained at each step, a pure function of (seed, step) so resumed runs repeat them.

    ``uniform``: one architecture, each group's width uniform over its choices (the paper).
    ``sandwich``: the largest, the smallest and one uniform sample, their losses averaged.

    Example:
        >>> sampler = ArchSampler(space, "uniform", seed=0)
        >>> [str(a) for a in sampler(0)]
        ['48_32_40_48_32_40_24_16']
    """

    space: SearchSpace
    rule: str = "uniform"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in ("uniform", "sandwich"):
            raise ConfigError(f"supernet.sampling must be 'uniform' or 'sandwich', got {self.rule!r}")

    def __call__(self, step: int) -> list[ArchSpec]:
        rng = random.Random(f"{self.seed}:{step}")
        if self.rule == "uniform":
            return [self.space.sample(rng)]
        return [self.space.largest(), self.space.smallest(), self.space.sample(rng)]


#: families with GAN Compression's separable ("mobile") variant: MobileResnetGenerator,
#: MobileSPADEGenerator and the separable AdaIN generator of its SuperMobile/SubMobile MUNIT
MOBILE_FAMILIES = ("resnet", "spade", "munit")


def has_mobile_variant(generator: Generator) -> bool:
    """Whether the generator's family has the separable variant (and ``generator`` is not it yet)."""
    return generator.family in MOBILE_FAMILIES and not generator.options.get("separable")


def student_options(teacher: Generator, separable: bool | None = None) -> dict:
    """The student's family options: the teacher's, with separable blocks (the paper's mobile
    generator: ResNet, SPADE, MUNIT) unless ``separable=False``, and without spectral norm."""
    options = dict(teacher.options)
    if teacher.family in MOBILE_FAMILIES:
        options["separable"] = True if separable is None else separable
    elif separable:
        raise ConfigError(f"family {teacher.family!r} has no separable variant (supernet.separable)")
    if "spectral_norm" in options:
        options["spectral_norm"] = False
    return options


def mobile_generator(teacher: Generator, base_width: int | None = None) -> Generator:
    """GAN Compression's mobile teacher: the teacher's family with separable blocks (ResNet, SPADE,
    MUNIT), at ``base_width`` (default: the teacher's), freshly initialised.

    Families without a separable variant return a fresh copy of the teacher's architecture.
    """
    options = student_options(teacher)
    if base_width is not None:
        options["base_width"] = base_width
        arch = None
    else:
        arch = teacher.arch
    return type(teacher).from_options(arch, options)


def mobile_arch(teacher: Generator, base_width: int | None = None) -> ArchSpec:
    """The widths of ``mobile_generator(teacher, base_width)``, without building it."""
    if base_width is None:
        return teacher.arch
    return ArchSpec(teacher.family, tuple(base_width for _ in teacher.width_groups))


def build_supernet(
    teacher: Generator,
    space: SearchSpace,
    separable: bool | None = None,
    init_from: Generator | None = None,
    order: str = "index",
) -> Generator:
    """The student supernet at the space's largest widths.

    With ``init_from`` (GAN Compression's mobile teacher, or the teacher with ``supernet.init:
    teacher``) it starts from that network's most important channels (L1 magnitude of the producing
    filters, every coupled layer kept consistent); ``order="importance"`` puts the most important
    first so that every subnet's leading channels are the ones that matter most (``supernet.init:
    teacher``), "index" keeps their order (the official weight transfer); else fresh (Fast GAN Compression).
    """
    if init_from is not None:
        space.check_fits(init_from)
        return prune_by_importance(init_from, space.largest(), order=order).train().requires_grad_(True)
    net = type(teacher).from_options(space.largest(), student_options(teacher, separable))
    space.check_fits(net)
    return net


def check_space(space: SearchSpace, teacher: Generator) -> None:
    """The space must describe the teacher's family and be no wider than the teacher."""
    names = tuple(g.name for g in teacher.width_groups)
    if space.family != teacher.family or space.groups != names:
        raise ArchSpecError(
            f"search space is for {space.family!r} {list(space.groups)}, teacher is {teacher.family!r} {list(names)}"
        )
