"""The ``Method`` protocol: what a compression method says about itself, in fixed stages.

The shared runner (:mod:`.runner`) does everything every method needs and calls the method's stages
in this order, timing each::

    check     checks of the recipe and options against the teacher, before the data is read
    prepare   checks and objects built before anything trains (fail early: targets, support)
    probes    the training stages' tasks, for the time planner (built fresh, trained a few steps)
    train     the method's main training (supernet / slimming / pruning), through ``run.fit``
    extract   the plain student at smaller widths (search / channel removal / generate once)
    finetune  the plain student trained further, through ``run.fit``
    export    extra files beside the saved student (e.g. ONNX graphs); returns their paths
    details   the method's own part of the summary (``summary["details"]``)

A method is registered with :func:`register` under its command-line name, with its recipe class
as a second key (torchao's config-type registry): ``method_for_recipe(type(recipe))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from ...errors import ConfigError
from ...models import Generator

if TYPE_CHECKING:
    from .recipe import StageConfig
    from .runner import Run

Probe = tuple["StageConfig", Callable[[], nn.Module]]


class Method:
    """Base of every method: class attributes say what it is, the stage methods what it does."""

    name: ClassVar[str]  # kebab-case, as on the command line
    recipe_class: ClassVar[type]  # a frozen dataclass with the shared blocks (common.recipe)
    recipe_folder: ClassVar[str]  # configs/methods/<recipe_folder>/fonts.yaml (and fonts_quick.yaml)
    refused_kinds: ClassVar[tuple[str, ...]] = ()  # dataset kinds it does not take, e.g. ("semantic",)
    target_kinds: ClassVar[tuple[str, ...]] = ("macs", "ratio")  # + "latency_ms" for searched budgets
    target_required: ClassVar[bool] = False
    takes_unlabelled: ClassVar[bool] = False  # data.unlabelled: extra inputs distilled from the teacher
    teacher_free: ClassVar[bool] = False  # trains from scratch without a teacher (see start_generator)
    student_family: ClassVar[str | None] = None  # the student's family; None: the teacher's (CAT: inception)
    status: ClassVar[str] = "available"

    def __init__(self, run: Run) -> None:
        self.run = run

    @staticmethod
    def check_teacher(teacher: Generator) -> None:
        """Refuse a teacher the method cannot compress (before anything else is done)."""

    @staticmethod
    def start_generator(recipe: Any, in_channels: int, out_channels: int) -> Generator:
        """No teacher (``teacher_free`` methods): the full-width generator to start from, fresh weights."""
        raise ConfigError("this method needs a teacher")

    # -- what the recipe says ------------------------------------------------------------------
    @staticmethod
    def recipe_targets(recipe: Any) -> dict[str, float | None]:
        """The recipe's compression target fields, by kind (``macs``, ``ratio``, ``latency_ms``)."""
        return {}

    # -- the stages, in order ------------------------------------------------------------------
    def check(self) -> None:
        """Checks of the recipe and options against the teacher that need no data (run first)."""

    def prepare(self) -> None:
        """Checks and objects that need no training; raise here, before any stage trains."""

    def probes(self) -> dict[str, Probe]:
        """``{stage name: (its StageConfig, a factory of a task of its cost)}`` for the time planner."""
        return {}

    def train(self) -> None:
        """The method's main training stage(s), each through :meth:`Run.fit`."""

    def extract(self) -> Generator:
        """The plain student (a generator of the teacher's family at smaller widths)."""
        raise NotImplementedError

    def finetune(self, student: Generator) -> Generator:
        """The student after fine-tuning (default: as it is)."""
        return student

    def export(self, student: Generator) -> dict[str, str]:
        """Extra files beside the saved student; returns ``{name: path}`` for the result's artifacts."""
        return {}

    def details(self) -> dict[str, Any]:
        """The method's own part of the summary."""
        return {}


_BY_NAME: dict[str, type[Method]] = {}
_BY_RECIPE: dict[type, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Register a :class:`Method` under ``cls.name`` and ``cls.recipe_class``; usable as a decorator."""
    from ..base import register_method
    from .runner import run_method

    if cls.name in _BY_NAME:
        raise ConfigError(f"method {cls.name!r} is registered twice")
    _BY_NAME[cls.name] = cls
    _BY_RECIPE.setdefault(cls.recipe_class, cls)

    def runner(teacher, data, out_dir, options):  # noqa: ANN001, ANN202  (MethodRunner)
        return run_method(cls, teacher, data, out_dir, options)

    runner.__doc__ = cls.__doc__
    register_method(cls.name, status=cls.status)(runner)
    return cls


def method_class(name: str) -> type[Method]:
    """The registered :class:`Method` class of ``name`` (unknown names list the known ones)."""
    if name not in _BY_NAME:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[name]


def method_for_recipe(recipe_class: type) -> type[Method]:
    """The method a recipe class belongs to (the first registered, for a recipe shared by two)."""
    if recipe_class not in _BY_RECIPE:
        raise ConfigError(f"no method takes a {recipe_class.__name__} recipe")
    return _BY_RECIPE[recipe_class]


def method_classes() -> dict[str, type[Method]]:
    return dict(_BY_NAME)
