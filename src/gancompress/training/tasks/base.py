"""What every teacher-training Task shares: batch unpacking, Adam, D toggling, sample columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ..recipe import OptimConfig


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


class TeacherTask(nn.Module):
    """Base of the teacher Tasks: ``generator()`` is what gets saved, ``discriminator()`` is saved beside it."""

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
