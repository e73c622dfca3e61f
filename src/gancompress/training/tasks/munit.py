"""MUNIT (Huang et al.) on the repository's one-decoder MUNIT generator, trained as the A → B translator.

The official MUNIT trains two auto-encoders (one per domain). The ``munit`` generator here is one
auto-encoder whose content encoder reads A (and B), whose style encoder reads B and whose decoder
renders B: exactly the A → B translator that GAN Compression compresses. Its objective is MUNIT's,
restricted to the terms this network has:

- image reconstruction × 10: decode(content(B), style(B)) ≈ B (B's auto-encoder);
- latent reconstruction × 1 each: a translation fake_B = decode(content(A), s) with a random style
  s ~ N(0, I) is encoded again, and content(fake_B) ≈ content(A), style(fake_B) ≈ s;
- GAN × 1: LSGAN with a multi-scale discriminator on B.

A's reconstruction and the B → A direction are left out: they need A's decoder, which the
translator does not have.
"""

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
    image_columns,
    set_requires_grad,
    split_batch,
)


@TEACHER_TASKS.register("munit")
class MUNITTask(TeacherTask):
    """Train a ``munit`` generator (content of A, style of B) with MUNIT's losses; see the module doc.

    Example:
        >>> task = MUNITTask(create_generator("munit"), create_discriminator("multiscale", in_channels=3),
        ...                  LossConfig(gan_mode="lsgan"), OptimConfig(lr_g=1e-4, lr_d=1e-4))
    """

    families = ("munit",)
    conditional = False

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, loss: LossConfig, optim: OptimConfig
    ) -> None:
        super().__init__()
        self.netG, self.netD = generator, discriminator
        self.loss_cfg, self.optim_cfg = loss, optim

    @classmethod
    def from_recipe(
        cls, recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
    ) -> MUNITTask:
        g = create_generator(recipe.generator.name, **generator_options(recipe, in_channels, out_channels))
        d = build_discriminator(recipe, cls.discriminator_in_channels(in_channels, out_channels))
        return cls(g, d, recipe.loss, recipe.optim)

    def generator(self) -> nn.Module:
        return self.netG

    def discriminator(self) -> nn.Module:
        return self.netD

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.optim_cfg
        return {"G": adam(self.netG.parameters(), o.lr_g, o), "D": adam(self.netD.parameters(), o.lr_d, o)}

    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        cfg, g = self.loss_cfg, self.netG
        real_a, real_b = (t.to(device_of(self)) for t in split_batch(batch))
        style_rand = torch.randn(real_a.shape[0], g.options["style_dim"], device=real_a.device)
        # D first on a translation made without gradients (MUNIT's dis_update)
        with torch.no_grad():
            fake_b = g.decode(g.encode_content(real_a), style_rand)
        set_requires_grad([self.netD], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = discriminator_loss(cfg.gan_mode, self.netD(real_b), self.netD(fake_b))
        backward(loss_d, optimizers["D"])
        optimizers["D"].step()
        # G: reconstruction of B, latent reconstruction of the translation, adversarial
        set_requires_grad([self.netD], False)
        optimizers["G"].zero_grad(set_to_none=True)
        content_a, content_b, style_b = (
            g.encode_content(real_a),
            g.encode_content(real_b),
            g.encode_style(real_b),
        )
        rec_b = g.decode(content_b, style_b)
        fake_b = g.decode(content_a, style_rand)
        logs = {
            "loss_x_recon": cfg.image_recon * F.l1_loss(f32(rec_b), real_b),
            "loss_c_recon": cfg.content_recon * F.l1_loss(f32(g.encode_content(fake_b)), f32(content_a)),
            "loss_s_recon": cfg.style_recon * F.l1_loss(f32(g.encode_style(fake_b)), style_rand),
            "loss_g_gan": cfg.gan * generator_gan_loss(cfg.gan_mode, self.netD(fake_b)),
        }
        loss_g = sum(logs.values())
        backward(loss_g, optimizers["G"])
        optimizers["G"].step()
        set_requires_grad([self.netD], True)
        logs.update(loss_g=loss_g, loss_d=loss_d)
        return {k: float(v.detach()) for k, v in logs.items()}

    @torch.no_grad()
    def translate(self, real_in: torch.Tensor, real_out: torch.Tensor) -> torch.Tensor:
        was = self.netG.training
        self.netG.eval()
        try:
            return self.netG(real_in, style_image=real_out)
        finally:
            self.netG.train(was)

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """A, the style image B, A rendered in B's style, A in a fixed random style."""
        real_a, real_b = (t.to(device_of(self)) for t in split_batch(batch))
        was = self.netG.training
        self.netG.eval()
        try:
            g = torch.Generator().manual_seed(0)
            style = torch.randn(real_a.shape[0], self.netG.options["style_dim"], generator=g).to(
                real_a.device
            )
            random_style = self.netG(real_a, style=style)
        finally:
            self.netG.train(was)
        return image_columns(real_a, real_b, self.translate(real_a, real_b), random_style)
