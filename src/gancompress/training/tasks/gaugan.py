"""GauGAN / SPADE (Park et al.): hinge loss, multi-scale D, feature matching × 10, VGG × 10, TTUR."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...models import create_generator
from ..losses import discriminator_loss, feature_matching_loss, generator_gan_loss
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
    on_device,
    set_requires_grad,
    split_batch,
)


@TEACHER_TASKS.register("gaugan")
class GauGANTask(TeacherTask):
    """Train a SPADE generator (label map → image) against a multi-scale D on cat(label, image).

    ``vgg`` is the perceptual loss module (``gancompress.metrics.vgg.VGGPerceptualLoss``, from the
    packaged VGG16 weights); it is frozen and kept out of checkpoints. It may be None only with
    ``loss.vgg = 0``. The optimizers follow GauGAN's TTUR from the recipe (lr_g 1e-4, lr_d 4e-4,
    betas (0, 0.9)).

    Example:
        >>> task = GauGANTask(create_generator("spade"), create_discriminator("multiscale", in_channels=39),
        ...                   VGGPerceptualLoss("auto"), LossConfig(gan_mode="hinge"), OptimConfig(1e-4, 4e-4, 0, 0.9))
    """

    families = ("spade",)
    conditional = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        vgg: nn.Module | None,
        loss: LossConfig,
        optim: OptimConfig,
    ) -> None:
        super().__init__()
        from ...errors import ConfigError

        if loss.vgg > 0 and vgg is None:
            raise ConfigError(
                "loss.vgg > 0 needs the VGG16 perceptual network; set loss.vgg=0 to train without it"
            )
        self.netG, self.netD = generator, discriminator
        self.loss_cfg, self.optim_cfg = loss, optim
        # A tuple keeps the frozen VGG out of the state dict: checkpoints hold trained weights only.
        self._frozen = (vgg.eval().requires_grad_(False) if vgg is not None else None,)

    @classmethod
    def from_recipe(
        cls, recipe: TrainRecipe, in_channels: int, out_channels: int, vgg: nn.Module | None = None
    ) -> GauGANTask:
        """``vgg``: the perceptual loss module, loaded from the packaged VGG16 weights when None."""
        if vgg is None and recipe.loss.vgg > 0:
            vgg = _load_vgg(recipe.loss.vgg_source)
        g = create_generator(recipe.generator.name, **generator_options(recipe, in_channels, out_channels))
        d = build_discriminator(recipe, cls.discriminator_in_channels(in_channels, out_channels))
        return cls(g, d, vgg, recipe.loss, recipe.optim)

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
        cfg = self.loss_cfg
        label, real = (t.to(device_of(self)) for t in split_batch(batch))
        # G first, as SPADE's trainer: adversarial + feature matching + VGG
        set_requires_grad([self.netD], False)
        optimizers["G"].zero_grad(set_to_none=True)
        fake = self.netG(label)
        pred_fake, feats_fake = self.netD(torch.cat([label, fake], 1), return_features=True)
        logs: dict[str, torch.Tensor] = {"loss_g_gan": cfg.gan * generator_gan_loss(cfg.gan_mode, pred_fake)}
        if cfg.feature_matching > 0:
            with torch.no_grad():
                _, feats_real = self.netD(torch.cat([label, real], 1), return_features=True)
            logs["loss_g_fm"] = cfg.feature_matching * feature_matching_loss(feats_real, feats_fake)
        vgg = self._frozen[0]
        if cfg.vgg > 0 and vgg is not None:
            logs["loss_g_vgg"] = cfg.vgg * f32(on_device(vgg, fake.device)(fake, real))
        loss_g = sum(logs.values())
        backward(loss_g, optimizers["G"])
        optimizers["G"].step()
        # D: hinge on real vs a detached fake
        set_requires_grad([self.netD], True)
        optimizers["D"].zero_grad(set_to_none=True)
        loss_d = discriminator_loss(
            cfg.gan_mode,
            self.netD(torch.cat([label, real], 1)),
            self.netD(torch.cat([label, fake.detach()], 1)),
        )
        backward(loss_d, optimizers["D"])
        optimizers["D"].step()
        logs.update(loss_g=loss_g, loss_d=loss_d)
        return {k: float(v.detach()) for k, v in logs.items()}


def _load_vgg(source: str) -> nn.Module:
    from ...metrics.vgg import VGGPerceptualLoss

    try:
        return VGGPerceptualLoss(source)
    except Exception as exc:  # the packaged weights are optional dependencies
        from ...errors import CheckpointError

        raise CheckpointError(
            f"loss.vgg: GauGAN's VGG loss needs packaged VGG16 weights ({exc}); "
            "install them (see docs/training.md) or set loss.vgg=0 to train without the VGG loss"
        ) from None
