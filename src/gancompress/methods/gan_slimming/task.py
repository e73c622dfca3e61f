"""The GAN Slimming Task: one minimax objective, trained by :func:`gancompress.training.fit`.

min over the student's weights W and scales γ, max over D, of
``gan · L_GAN(D: teacher output real, student output fake) + beta · L_distill(student, teacher)
+ rho · ‖γ‖₁``. W takes Adam steps; γ takes SGD steps followed by the proximal soft-threshold of the
L1 term (threshold = current γ learning rate × rho), then β follows γ to 0 where γ is 0. Given a
MACs target, the proximal step stops for good at the first step that would take the live widths
below it (that step is undone), so ρ cannot overshoot the target; the final |γ| threshold then meets
it exactly. With quantisation attached the student runs with fake-quantised weights and activations (STE).
D sees the teacher's outputs as real and a history pool of the student's as fake (CycleGAN's pool).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...arch import ArchSpec
from ...errors import ConfigError
from ...models import Generator
from ...training.losses import ImagePool, discriminator_loss, generator_gan_loss
from ...training.precision import backward
from ...training.tasks.base import on_device
from ..common.data import split_batch
from ..common.recipe import StageConfig
from .recipe import SlimLoss
from .slim import (
    ScaleGroup,
    alive_channels,
    gamma_parameters,
    soft_threshold_,
    switch_off_dead_,
    widths_at,
)

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def gram_matrix(feats: torch.Tensor) -> torch.Tensor:
    """Gram matrix of a feature map, normalised by C·H·W (as the official perceptual loss)."""
    b, c, h, w = feats.shape
    f = feats.reshape(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


class OutputDistillation(nn.Module):
    """Distance between the student's and the teacher's output images.

    ``vgg``: L1 of VGG16 features at ``content_layer`` + ``style_weight`` × Σ MSE of Gram matrices at
    relu1_2…relu4_3 (GAN Slimming's perceptual loss), on features at the ImageNet-normalised VGG16's
    scale (``VGG16Features.perceptual``); ``mse``; ``l1_ssim``: L1 + (1 − SSIM).
    The VGG network is frozen and kept out of the state dict.

    Example:
        >>> loss = OutputDistillation("mse")(student_out, teacher_out)
    """

    def __init__(
        self,
        kind: str,
        vgg: nn.Module | None = None,
        content_layer: str = "relu1_2",
        style_weight: float = 1e5,
    ) -> None:
        super().__init__()
        if kind == "vgg" and vgg is None:
            raise ConfigError("loss.distill vgg needs a VGG16 feature network")
        self.kind = kind
        self.content_layer = content_layer
        self.style_weight = style_weight
        self._frozen = (vgg.eval().requires_grad_(False) if vgg is not None else None,)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.kind == "mse":
            return F.mse_loss(student, teacher)
        if self.kind == "l1_ssim":
            from ...metrics.paired import ssim

            return F.l1_loss(student, teacher) + (1 - ssim(student, teacher)).mean()
        vgg = on_device(self._frozen[0], student.device)
        # The 1e5 style weight was set on torchvision's VGG16; a caffe-style backbone (HED's) has features
        # about 57.6x larger and Gram matrices 57.6^2x larger, so its features are rescaled first.
        embed = getattr(vgg, "perceptual", vgg)
        fs = embed(student)
        with torch.no_grad():
            ft = embed(teacher)
        content = F.l1_loss(fs[self.content_layer], ft[self.content_layer])
        style = sum(F.mse_loss(gram_matrix(fs[n]), gram_matrix(ft[n])) for n in STYLE_LAYERS)
        return content + self.style_weight * style


class GanSlimmingTask(nn.Module):
    """Train a slimmable (optionally fake-quantised) student against a frozen teacher.

    With ``groups`` (the slimming stage) γ of those norms gets its own SGD optimiser and the proximal
    step; without (fine-tuning) every student parameter is trained by Adam. With ``target_macs`` and
    ``macs`` (paper MACs of an ArchSpec) the proximal step is guarded: the first step that would leave
    the live widths costing less than the target is undone and sparsification stops (channels already
    off stay off). The state dict holds the student (γ included, and the weight quantisers' bit
    width), the discriminator, the pool and whether sparsification has stopped.

    Example:
        >>> task = GanSlimmingTask(student, teacher, disc, SlimLoss(distill="mse"), stage, groups=groups, rho=0.01)
        >>> logs = task.training_step(batch, 0, task.configure_optimizers())
    """

    def __init__(
        self,
        student: Generator,
        teacher: Generator,
        discriminator: nn.Module | None,
        loss: SlimLoss,
        stage: StageConfig,
        *,
        distillation: OutputDistillation | None = None,
        groups: Mapping[str, ScaleGroup] | None = None,
        rho: float = 0.0,
        lr_gamma: float = 0.1,
        momentum: float = 0.5,
        weight_decay: float = 0.0,
        target_macs: float | None = None,
        macs: Callable[[ArchSpec], int] | None = None,
    ) -> None:
        super().__init__()
        if (target_macs is None) != (macs is None):
            raise ConfigError("a MACs target for the proximal step needs both target_macs and macs")
        if student.family != teacher.family:
            raise ConfigError(f"student is {student.family!r}, teacher is {teacher.family!r}")
        if loss.gan > 0 and discriminator is None:
            raise ConfigError("loss.gan > 0 needs a discriminator")
        self.student = student
        self.discriminator = discriminator
        self.pool = ImagePool(loss.pool_size)
        self.loss_cfg = loss
        self.stage = stage
        self.groups = dict(groups or {})
        self.rho = rho
        self.lr_gamma = lr_gamma
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.target_macs = target_macs
        self.macs = macs
        # 1 once the guarded proximal step reached the target; a buffer, so resume restores it
        self.register_buffer("prox_stopped", torch.zeros((), dtype=torch.int64))
        self.distillation = distillation or OutputDistillation("mse")
        # Frozen networks sit in a tuple so they are not registered: checkpoints hold trained weights only.
        self._frozen = (teacher.eval().requires_grad_(False),)

    @property
    def teacher(self) -> Generator:
        return self._frozen[0]

    def generator(self) -> Generator:
        return self.student

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.stage.beta1, self.stage.beta2)
        gammas = gamma_parameters(self.student, self.groups) if self.groups else []
        ids = {id(p) for p in gammas}
        weights = [p for p in self.student.parameters() if id(p) not in ids]
        opts: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(weights, lr=self.stage.lr_g, betas=betas, weight_decay=self.weight_decay)
        }
        if gammas:
            opts["gamma"] = torch.optim.SGD(gammas, lr=self.lr_gamma, momentum=self.momentum)
        if self.discriminator is not None and self.loss_cfg.gan > 0:
            opts["D"] = torch.optim.Adam(
                self.discriminator.parameters(),
                lr=self.stage.lr_d,
                betas=betas,
                weight_decay=self.weight_decay,
            )
        return opts

    @torch.no_grad()
    def teacher_forward(self, real_in: torch.Tensor) -> torch.Tensor:
        return on_device(self.teacher, real_in.device)(real_in)

    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """G (and γ) step, the proximal step on γ, then the D step (the official order)."""
        cfg = self.loss_cfg
        device = next(self.student.parameters()).device
        real_in, _ = split_batch(batch)  # the teacher's output is the target: unpaired data works too
        real_in = real_in.to(device)
        t_out = self.teacher_forward(real_in)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        fake = self.student(real_in)
        logs: dict[str, float] = {}
        loss = cfg.beta * self.distillation(fake, t_out)
        logs["loss_distill"] = float(loss.detach())
        if "D" in optimizers:
            self.discriminator.requires_grad_(False)
            gan = cfg.gan * generator_gan_loss(cfg.gan_mode, self.discriminator(fake))
            self.discriminator.requires_grad_(True)
            logs["loss_gan_g"] = float(gan.detach())
            loss = loss + gan
        backward(loss, optimizers["G"])
        optimizers["G"].step()
        if "gamma" in optimizers:
            opt = optimizers["gamma"]
            gammas = gamma_parameters(self.student, self.groups)
            off = [g.detach() == 0 for g in gammas]
            opt.step()
            lr = opt.param_groups[0]["lr"]  # fit's linear decay scales it, as the official cosine schedule
            self._proximal_step(gammas, off, lr * self.rho)
            switch_off_dead_(self.student, self.groups)
            logs["prox_stopped"] = float(self.prox_stopped)
            alive = alive_channels(self.student, self.groups)
            logs["alive_channels"] = float(sum(alive.values()))
            logs["lr_gamma"] = lr
            logs["gamma_l1"] = float(
                sum(g.detach().abs().sum() for g in gamma_parameters(self.student, self.groups))
            )
        logs["loss_g"] = float(loss.detach())
        if "D" in optimizers:
            disc = self.discriminator
            optimizers["D"].zero_grad(set_to_none=True)
            d_real = disc(t_out)
            d_fake = disc(self.pool.query(fake.detach()))
            loss_d = discriminator_loss(cfg.gan_mode, d_real, d_fake)
            backward(loss_d, optimizers["D"])
            optimizers["D"].step()
            logs["loss_d"] = float(loss_d.detach())
        return logs

    @torch.no_grad()
    def _proximal_step(self, gammas: list[torch.Tensor], off: list[torch.Tensor], threshold: float) -> None:
        """Soft-threshold γ, unless sparsification has stopped or this step would pass the MACs target."""
        if self.prox_stopped.item():
            for g, dead in zip(gammas, off, strict=True):
                g[dead] = 0  # channels already switched off stay off; the others train freely
            return
        before = [g.detach().clone() for g in gammas]
        soft_threshold_(gammas, threshold)
        if (
            self.target_macs is not None
            and self.macs(widths_at(self.student, self.groups)) < self.target_macs
        ):
            for g, b in zip(gammas, before, strict=True):
                g.copy_(b)  # undo: the final |γ| threshold reaches the target from just above it
            self.prox_stopped.fill_(1)

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input (when it is an image), teacher output and student output side by side."""
        device = next(self.student.parameters()).device
        real_in, _ = split_batch(batch)
        real_in = real_in.to(device)
        was = self.student.training
        self.student.eval()
        t_out = self.teacher_forward(real_in)
        s_out = self.student(real_in)
        self.student.train(was)
        cols = ([real_in] if real_in.shape[1] == 3 else []) + [t_out, s_out]
        return torch.cat(cols, dim=3)
