"""Teacher-training Tasks for the four families, and :func:`build_task` that makes one from a recipe.

Each Task registers itself in :data:`TEACHER_TASKS` under its recipe name (``task:``); a new one
needs a module here with a registered :class:`TeacherTask` subclass and nothing else.

Example:
    >>> task = build_task(load_train_recipe("configs/train/pix2pix_fonts.yaml"), in_channels=3, out_channels=3)
    >>> fit(task, train_set, "runs/teacher", batch_size=1, max_steps=2000)
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...errors import ConfigError
from ..recipe import TrainRecipe
from . import cyclegan, gaugan, munit, pix2pix  # noqa: F401  (register the tasks)
from .base import TEACHER_TASKS, TeacherTask, build_discriminator, generator_options, split_batch
from .cyclegan import CycleGANTask
from .gaugan import GauGANTask
from .munit import MUNITTask
from .pix2pix import Pix2PixTask

#: the generator families each task trains
TASK_FAMILIES = {name: TEACHER_TASKS.get(name).families for name in TEACHER_TASKS.list()}


def discriminator_in_channels(recipe: TrainRecipe, in_channels: int, out_channels: int) -> int:
    """Channels D reads: (input, image) pairs for a conditional task (pix2pix, GauGAN), else images."""
    return TEACHER_TASKS.get(recipe.task).discriminator_in_channels(in_channels, out_channels)


def discriminator_config(recipe: TrainRecipe, in_channels: int) -> dict[str, Any]:
    """What rebuilds the saved discriminator (written beside it as ``discriminator.json``)."""
    d = recipe.discriminator
    return {
        "name": d.name,
        "in_channels": in_channels,
        "conditional": TEACHER_TASKS.get(recipe.task).conditional,
        "base_width": d.base_width,
        "num_layers": d.num_layers,
        "num_scales": d.num_scales,
        "norm": d.norm,
        "spectral_norm": d.spectral_norm,
    }


def build_task(
    recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
) -> TeacherTask:
    """The Task of ``recipe.task`` with fresh networks (``vgg``: GauGAN's perceptual loss, loaded when None)."""
    cls = TEACHER_TASKS.get(recipe.task)
    family = recipe.generator.name
    if family not in cls.families:
        raise ConfigError(f"generator.name: {recipe.task} trains {' or '.join(cls.families)}, got {family!r}")
    return cls.from_recipe(recipe, in_channels, out_channels, vgg=vgg)


__all__ = [
    "CycleGANTask",
    "GauGANTask",
    "MUNITTask",
    "Pix2PixTask",
    "TASK_FAMILIES",
    "TEACHER_TASKS",
    "TeacherTask",
    "build_discriminator",
    "build_task",
    "discriminator_config",
    "discriminator_in_channels",
    "generator_options",
    "split_batch",
]
