"""What every teacher-training Task shares: batch unpacking, Adam, D toggling, sample columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ...models import create_discriminator
from ...registry import Registry
from ..recipe import OptimConfig, TrainRecipe


def split_batch(batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator input, real output image) of a paired/unpaired (A, B) or semantic (label, image) batch."""
    if "label" in batch:
        return batch["label"], batch["image"]
    if "A" in batch and "B" in batch:
        return batch["A"], batch["B"]
    raise ConfigError(f"a batch needs A and B (or label and image); got keys {sorted(batch)}")


def adam(params: Iterable[nn.Parameter], lr: float, optim: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(optim.beta1, optim.beta2))


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    # D is frozen while G's loss backpropagates through it: no wasted gradients on D's weights.
    for net in nets:
        net.requires_grad_(flag)


def device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """``module``, moved to ``device`` if it is elsewhere.

    Tasks hold frozen networks (teachers, VGG16s) in a tuple so their weights stay out of checkpoints;
    ``task.to(device)`` therefore does not move them, and each use moves them here, once.
    """
    if device_of(module) != device:
        module.to(device)
    return module


def image_columns(*images: torch.Tensor) -> torch.Tensor:
    """Side-by-side columns; label maps (not 1 or 3 channels) are left out of the picture."""
    cols = [x for x in images if x.shape[1] in (1, 3)]
    return torch.cat([x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x for x in cols], dim=3)


def f32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in fp32: losses are computed in full precision when the step runs under autocast."""
    return x.float()


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


class TeacherTask(nn.Module):
    """Base of the teacher Tasks: ``generator()`` is what gets saved, ``discriminator()`` is saved beside it.

    Each task registers itself in :data:`TEACHER_TASKS` under its recipe name, says which generator
    ``families`` it trains and whether its D is ``conditional`` (judges (input, image) pairs), and
    builds itself from a recipe with :meth:`from_recipe`.
    """

    families: ClassVar[tuple[str, ...]] = ()
    conditional: ClassVar[bool] = False

    @classmethod
    def from_recipe(
        cls, recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
    ) -> TeacherTask:
        """The Task with fresh networks for data of ``in_channels`` → ``out_channels``."""
        raise NotImplementedError

    @classmethod
    def discriminator_in_channels(cls, in_channels: int, out_channels: int) -> int:
        # pix2pix and GauGAN judge (input, image) pairs; CycleGAN and MUNIT judge images alone.
        return in_channels + out_channels if cls.conditional else out_channels

    def generator(self) -> nn.Module:
        raise NotImplementedError

    def discriminator(self) -> nn.Module:
        """The discriminator on the generator's output domain (GAN Compression starts its student's D from it)."""
        raise NotImplementedError

    @torch.no_grad()
    def translate(self, real_in: torch.Tensor, real_out: torch.Tensor) -> torch.Tensor:
        """The saved generator's output for ``real_in`` (``real_out`` supplies MUNIT's style), in eval mode."""
        g = self.generator()
        was = g.training
        g.eval()
        try:
            return g(real_in)
        finally:
            g.train(was)

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input, ground truth and output side by side."""
        real_in, real_out = (t.to(device_of(self)) for t in split_batch(batch))
        return image_columns(real_in, real_out, self.translate(real_in, real_out))


#: recipe name (``task:`` in a training recipe) → TeacherTask class
TEACHER_TASKS: Registry[type[TeacherTask]] = Registry("teacher task")
