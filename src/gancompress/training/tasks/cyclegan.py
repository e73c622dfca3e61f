"""CycleGAN (Zhu et al.): two generators, two PatchGANs, LSGAN, cycle × 10, identity × 0.5, image pools of 50."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...models import create_generator
from ..losses import ImagePool, discriminator_loss, generator_gan_loss
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
    image_columns,
    set_requires_grad,
    split_batch,
)


@TEACHER_TASKS.register("cyclegan")
class CycleGANTask(TeacherTask):
    """Both directions on unpaired A and B; the saved generator is ``g_ab`` (A → B), its D is ``d_b``.

    ``d_b`` tells real B from ``g_ab``'s fakes, ``d_a`` real A from ``g_ba``'s. The identity term is
    ``identity × cycle`` times L1(g_ab(B), B) + L1(g_ba(A), A), as the official code weighs it.

    Example:
        >>> task = CycleGANTask(g_ab, g_ba, d_a, d_b, LossConfig(gan_mode="lsgan"), OptimConfig())
    """

    families = ("resnet", "unet")
    conditional = False

    def __init__(
        self,
        g_ab: nn.Module,
        g_ba: nn.Module,
        d_a: nn.Module,
        d_b: nn.Module,
        loss: LossConfig,
        optim: OptimConfig,
    ) -> None:
        super().__init__()
        self.g_ab, self.g_ba, self.d_a, self.d_b = g_ab, g_ba, d_a, d_b
        self.loss_cfg, self.optim_cfg = loss, optim
        self.pool_a, self.pool_b = ImagePool(loss.pool_size), ImagePool(loss.pool_size)

    @classmethod
    def from_recipe(
        cls, recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
    ) -> CycleGANTask:
        family, opts = recipe.generator.name, generator_options(recipe, in_channels, out_channels)
        g_ab = create_generator(family, **opts)
        g_ba = create_generator(family, **dict(opts, in_channels=out_channels, out_channels=in_channels))
        d_a = build_discriminator(recipe, in_channels)
        d_b = build_discriminator(recipe, cls.discriminator_in_channels(in_channels, out_channels))
        return cls(g_ab, g_ba, d_a, d_b, recipe.loss, recipe.optim)

    def generator(self) -> nn.Module:
        return self.g_ab

    def discriminator(self) -> nn.Module:
        return self.d_b

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.optim_cfg
        return {
            "G": adam([*self.g_ab.parameters(), *self.g_ba.parameters()], o.lr_g, o),
            "D": adam([*self.d_a.parameters(), *self.d_b.parameters()], o.lr_d, o),
        }

    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        cfg = self.loss_cfg
        real_a, real_b = (t.to(device_of(self)) for t in split_batch(batch))
        fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
        rec_a, rec_b = self.g_ba(fake_b), self.g_ab(fake_a)
        # G (both directions), with both Ds frozen
        set_requires_grad([self.d_a, self.d_b], False)
        optimizers["G"].zero_grad(set_to_none=True)
        gan_ab = generator_gan_loss(cfg.gan_mode, self.d_b(fake_b))
        gan_ba = generator_gan_loss(cfg.gan_mode, self.d_a(fake_a))
        cyc_a = F.l1_loss(f32(rec_a), real_a)
        cyc_b = F.l1_loss(f32(rec_b), real_b)
        logs: dict[str, torch.Tensor] = {}
        loss_g = cfg.gan * (gan_ab + gan_ba) + cfg.cycle * (cyc_a + cyc_b)
        if cfg.identity > 0:
            if real_a.shape[1] != real_b.shape[1]:
                raise ConfigError(
                    "loss.identity > 0 needs A and B with the same channels; set loss.identity=0"
                )
            idt = F.l1_loss(f32(self.g_ab(real_b)), real_b) + F.l1_loss(f32(self.g_ba(real_a)), real_a)
            loss_g = loss_g + cfg.identity * cfg.cycle * idt
            logs["loss_idt"] = idt
        backward(loss_g, optimizers["G"])
        optimizers["G"].step()
        # D_A and D_B, each on real images vs a mix of current and pooled fakes
        set_requires_grad([self.d_a, self.d_b], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d_b = discriminator_loss(
            cfg.gan_mode, self.d_b(real_b), self.d_b(self.pool_b.query(f32(fake_b.detach())))
        )
        loss_d_a = discriminator_loss(
            cfg.gan_mode, self.d_a(real_a), self.d_a(self.pool_a.query(f32(fake_a.detach())))
        )
        backward(loss_d_a + loss_d_b, optimizers["D"])
        optimizers["D"].step()
        logs.update(
            loss_d_a=loss_d_a,
            loss_d_b=loss_d_b,
            loss_gan_ab=gan_ab,
            loss_gan_ba=gan_ba,
            loss_cyc_a=cyc_a,
            loss_cyc_b=cyc_b,
            loss_g=loss_g,
        )
        return {k: float(v.detach()) for k, v in logs.items()}

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """A, G_AB(A), G_BA(G_AB(A)), then B (the paired target when the test split has one)."""
        real_a, real_b = (t.to(device_of(self)) for t in split_batch(batch))
        was = self.training
        self.eval()
        try:
            fake_b = self.g_ab(real_a)
            return image_columns(real_a, fake_b, self.g_ba(fake_b), real_b)
        finally:
            self.train(was)
