"""The CAT Task: a generator trained with GAN + reconstruction + kernel-alignment distillation.

The official ``InceptionDistiller`` step: D first (real pairs / real output images against the
student's), then G on ``gan · L_GAN + recon · L_recon(student, target) + distill · Σ_points −KA``,
where the target is the ground truth on paired data and the teacher's output on unpaired data, and
KA compares the student's and the teacher's features at each feature point (any channel counts, no
adapters). The same Task trains the inception teacher from the given teacher and the pruned student
from the inception teacher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...models import Generator
from ...training.losses import discriminator_loss, generator_gan_loss
from ...training.tasks.base import on_device
from ..common.data import split_batch
from ..common.recipe import StageConfig
from .ka import kernel_alignment
from .recipe import CatLoss

RECON = {"l1": F.l1_loss, "l2": F.mse_loss, "smooth_l1": F.smooth_l1_loss}


class CatTask(nn.Module):
    """Train ``student`` against a frozen ``teacher`` (CAT's distillation objective).

    ``points``: the feature points distilled by KA (names both generators have); ``distill``: the
    KA weight; ``paired``: reconstruct the ground truth (else the teacher's output); ``conditional``:
    D reads the input beside the image.

    Example:
        >>> task = CatTask(student, teacher, disc, CatLoss(), stage, points=("block3",), distill=1.0)
        >>> logs = task.training_step(batch, 0, task.configure_optimizers())
    """

    def __init__(
        self,
        student: Generator,
        teacher: Generator,
        discriminator: nn.Module | None,
        loss: CatLoss,
        stage: StageConfig,
        *,
        points: Sequence[str] = (),
        distill: float = 1.0,
        paired: bool = True,
        conditional: bool = True,
    ) -> None:
        super().__init__()
        if loss.gan > 0 and discriminator is None:
            raise ConfigError("loss.gan > 0 needs a discriminator")
        for net, what in ((student, "student"), (teacher, "teacher")):
            missing = [p for p in points if p not in net.feature_points]
            if missing:
                raise ConfigError(f"loss.feature_points: the {what} ({net.family}) has no point(s) {missing}")
        self.student = student
        self.discriminator = discriminator if loss.gan > 0 else None
        self.loss_cfg = loss
        self.stage = stage
        self.points = tuple(points) if distill > 0 else ()
        self.distill = float(distill)
        self.paired = paired
        self.conditional = conditional
        # The frozen teacher sits in a tuple so it is not registered: checkpoints hold trained weights only.
        self._frozen = (teacher.eval().requires_grad_(False),)

    @property
    def teacher(self) -> Generator:
        return self._frozen[0]

    def generator(self) -> Generator:
        return self.student

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.stage.beta1, self.stage.beta2)
        opts: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(self.student.parameters(), lr=self.stage.lr_g, betas=betas)
        }
        if self.discriminator is not None:
            opts["D"] = torch.optim.Adam(self.discriminator.parameters(), lr=self.stage.lr_d, betas=betas)
        return opts

    @torch.no_grad()
    def teacher_forward(self, real_in: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        teacher = on_device(self.teacher, real_in.device)
        if not self.points:
            return teacher(real_in), {}
        return teacher(real_in, features=self.points)

    def ka_loss(
        self, s_feats: Mapping[str, torch.Tensor], t_feats: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Σ over the feature points of −KA(student, teacher)."""
        return sum(-kernel_alignment(s_feats[p], t_feats[p]) for p in self.points)

    def _d_input(self, real_in: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([real_in, image], 1) if self.conditional else image

    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """D step, then G step (the official ``optimize_parameters``)."""
        cfg = self.loss_cfg
        device = next(self.student.parameters()).device
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        t_out, t_feats = self.teacher_forward(real_in)
        if self.points:
            fake, s_feats = self.student(real_in, features=self.points)
        else:
            fake, s_feats = self.student(real_in), {}
        logs: dict[str, float] = {}
        disc = self.discriminator
        if disc is not None:
            optimizers["D"].zero_grad(set_to_none=True)
            real_d = self._d_input(real_in, real_out)
            loss_d = discriminator_loss(
                cfg.gan_mode, disc(real_d), disc(self._d_input(real_in, fake.detach()))
            )
            loss_d.backward()
            optimizers["D"].step()
            logs["loss_d"] = float(loss_d.detach())
        optimizers["G"].zero_grad(set_to_none=True)
        target = real_out if self.paired else t_out
        loss = cfg.recon * RECON[cfg.recon_kind](fake, target)
        logs["loss_recon"] = float(loss.detach())
        if disc is not None:
            disc.requires_grad_(False)
            gan = cfg.gan * generator_gan_loss(cfg.gan_mode, disc(self._d_input(real_in, fake)))
            disc.requires_grad_(True)
            logs["loss_gan_g"] = float(gan.detach())
            loss = loss + gan
        if self.points:
            ka = self.ka_loss(s_feats, t_feats)
            logs["ka_mean"] = float(-ka.detach()) / len(self.points)
            loss = loss + self.distill * ka
        loss.backward()
        optimizers["G"].step()
        logs["loss_g"] = float(loss.detach())
        return logs

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input (when it is an image), teacher output and student output side by side."""
        device = next(self.student.parameters()).device
        real_in, _ = split_batch(batch)
        real_in = real_in.to(device)
        was = self.student.training
        self.student.eval()
        t_out = on_device(self.teacher, device)(real_in)
        s_out = self.student(real_in)
        self.student.train(was)
        cols = ([real_in] if real_in.shape[1] == 3 else []) + [t_out, s_out]
        return torch.cat(cols, dim=3)
