"""pix2pix (Isola et al.): conditional GAN with a PatchGAN on (input, image) pairs, plus L1 × 100."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...models import create_generator
from ..losses import discriminator_loss, generator_gan_loss
from ..precision import backward
from ..recipe import LossConfig, OptimConfig, TrainRecipe
from .base import (
    TEACHER_TASKS,
    TeacherTask,
    adam,
    build_discriminator,
    device_of,
    f32,
    generator_options,
    set_requires_grad,
    split_batch,
)


@TEACHER_TASKS.register("pix2pix")
class Pix2PixTask(TeacherTask):
    """Train ``generator`` (A → B) against a conditional ``discriminator`` that sees cat(A, B).

    Example:
        >>> task = Pix2PixTask(create_generator("unet"), create_discriminator("patchgan"), LossConfig(), OptimConfig())
        >>> fit(task, paired_train, "runs/p2p", batch_size=1, max_steps=80000, decay_from=40000)
    """

    families = ("resnet", "unet")
    conditional = True

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, loss: LossConfig, optim: OptimConfig
    ) -> None:
        super().__init__()
        self.netG, self.netD = generator, discriminator
        self.loss_cfg, self.optim_cfg = loss, optim

    @classmethod
    def from_recipe(
        cls, recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
    ) -> Pix2PixTask:
        g = create_generator(recipe.generator.name, **generator_options(recipe, in_channels, out_channels))
        d = build_discriminator(recipe, cls.discriminator_in_channels(in_channels, out_channels))
        return cls(g, d, recipe.loss, recipe.optim)

    def generator(self) -> nn.Module:
        return self.netG

    def discriminator(self) -> nn.Module:
        return self.netD

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "G": adam(self.netG.parameters(), self.optim_cfg.lr_g, self.optim_cfg),
            "D": adam(self.netD.parameters(), self.optim_cfg.lr_d, self.optim_cfg),
        }

    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        cfg = self.loss_cfg
        real_a, real_b = (t.to(device_of(self)) for t in split_batch(batch))
        fake_b = self.netG(real_a)
        # D: real pairs vs fake pairs (the official 0.5 factor is inside discriminator_loss)
        set_requires_grad([self.netD], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = discriminator_loss(
            cfg.gan_mode,
            self.netD(torch.cat([real_a, real_b], 1)),
            self.netD(torch.cat([real_a, fake_b.detach()], 1)),
        )
        backward(loss_d, optimizers["D"])
        optimizers["D"].step()
        # G: fool D, and stay close to the ground truth
        set_requires_grad([self.netD], False)
        optimizers["G"].zero_grad(set_to_none=True)
        loss_gan = cfg.gan * generator_gan_loss(cfg.gan_mode, self.netD(torch.cat([real_a, fake_b], 1)))
        loss_l1 = cfg.l1 * F.l1_loss(f32(fake_b), real_b)
        loss_g = loss_gan + loss_l1
        backward(loss_g, optimizers["G"])
        optimizers["G"].step()
        set_requires_grad([self.netD], True)
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g_gan": float(loss_gan.detach()),
            "loss_g_l1": float(loss_l1.detach()),
            "loss_g": float(loss_g.detach()),
        }
