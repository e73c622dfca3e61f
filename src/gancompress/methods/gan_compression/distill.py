"""Distillation for GAN Compression: feature adapters, the loss, and the one training Task.

The student learns from the teacher at its intermediate feature points (each student map goes
through a learnable 1×1 conv to the teacher's width; MSE), from a reconstruction target (the ground
truth for paired data, the teacher's output for unpaired data: pseudo-pairs, no cycle loss), and from
a discriminator. The same :class:`DistillTask` trains the mobile teacher (fixed widths), the
once-for-all supernet (one or three sampled widths per step) and the fine-tuned subnet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...arch import ArchSpec
from ...errors import ConfigError
from ...layers import ElasticConv2d
from ...models import Generator
from ...training.losses import discriminator_loss, feature_matching_loss, generator_gan_loss
from ...training.precision import backward
from ...training.tasks.base import on_device
from ..common.data import split_batch
from ..common.discriminator import (  # noqa: F401  (re-exported: the distillation's discriminator)
    build_discriminator,
    discriminator_is_conditional,
    teacher_gan_mode,
)
from .recipe import LossConfig, StageConfig

#: which widths to run at a training step: a list of ArchSpecs (None = the network's own widths)
ArchSampler = Callable[[int], Sequence[ArchSpec | None]]


def default_points(generator: Generator) -> tuple[str, ...]:
    """Feature points distilled by default: every map-shaped point (MUNIT's style code gets an L1 instead)."""
    return tuple(p for p in generator.feature_points if p != "style")


class FeatureAdapters(nn.Module):
    """One 1×1 conv per feature point, student width → teacher width.

    The convs are width-elastic on their input side, so a supernet's adapters follow whatever subnet
    width the student map has at this step.

    Example:
        >>> adapters = FeatureAdapters({"block3": 64}, {"block3": 256})
        >>> loss = adapters({"block3": s_map}, {"block3": t_map})
    """

    def __init__(self, student_channels: Mapping[str, int], teacher_channels: Mapping[str, int]) -> None:
        super().__init__()
        missing = sorted(set(student_channels) - set(teacher_channels))
        if missing:
            raise ConfigError(f"feature point(s) {missing} missing from the teacher")
        self.convs = nn.ModuleDict(
            {p: ElasticConv2d(c, teacher_channels[p], 1) for p, c in student_channels.items()}
        )
        for conv in self.convs.values():
            # the official distiller's init (normal, std 0.02, zero bias)
            nn.init.normal_(conv.weight, 0.0, 0.02)
            nn.init.zeros_(conv.bias)

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(self.convs)

    def forward(
        self, student_feats: Mapping[str, torch.Tensor], teacher_feats: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Sum over feature points of the MSE between the mapped student map and the teacher map."""
        total = None
        for name, conv in self.convs.items():
            loss = F.mse_loss(conv(student_feats[name]), teacher_feats[name])
            total = loss if total is None else total + loss
        if total is None:
            raise ConfigError("no feature points to distil")
        return total

    def narrowed(self, student_channels: Mapping[str, int]) -> FeatureAdapters:
        """Adapters for a fixed narrower student: the first input channels of these weights."""
        teacher = {p: c.out_channels for p, c in self.convs.items()}
        out = FeatureAdapters({p: student_channels[p] for p in self.convs}, teacher)
        with torch.no_grad():
            for p, conv in out.convs.items():
                conv.weight.copy_(self.convs[p].weight[:, : conv.in_channels])
                conv.bias.copy_(self.convs[p].bias)
        return out


# -- the Task -------------------------------------------------------------------------------------
def fixed_arch(arch: ArchSpec | None = None) -> ArchSampler:
    """A sampler that always trains the same widths (``None``: the network's own)."""
    return lambda step: [arch]


class DistillTask(nn.Module):
    """Train ``student`` against a frozen ``teacher`` with the GAN Compression objective.

    Owns every trained network (student, discriminator, feature adapters), so its state dict is the
    model part of a checkpoint; the teacher is frozen and is not part of it. At each step the
    ``arch_sampler`` says which widths to train: one architecture (uniform sampling, fixed widths)
    or several whose generator losses are averaged into one update (the sandwich rule).

    Example:
        >>> task = DistillTask(student, teacher, disc, adapters, LossConfig(), StageConfig(lr_g=2e-4))
        >>> logs = task.training_step(batch, step=0, optimizers=task.configure_optimizers())
    """

    def __init__(
        self,
        student: Generator,
        teacher: Generator,
        discriminator: nn.Module | None,
        adapters: FeatureAdapters | None,
        loss: LossConfig,
        stage: StageConfig,
        arch_sampler: ArchSampler | None = None,
        vgg: nn.Module | None = None,
        conditional_d: bool = True,
    ) -> None:
        super().__init__()
        if student.family != teacher.family:
            raise ConfigError(f"student is {student.family!r}, teacher is {teacher.family!r}")
        if loss.gan > 0 and discriminator is None:
            raise ConfigError("loss.gan > 0 needs a discriminator")
        if loss.distill > 0 and adapters is None:
            raise ConfigError("loss.distill > 0 needs feature adapters")
        if loss.vgg > 0 and vgg is None:
            raise ConfigError(
                "loss.vgg > 0 needs a VGG perceptual loss module (metrics.vgg.VGGPerceptualLoss)"
            )
        self.student = student
        self.discriminator = discriminator
        self.adapters = adapters
        self.loss_cfg = loss
        self.stage = stage
        self.arch_sampler = arch_sampler or fixed_arch(None)
        self.conditional_d = conditional_d
        # Frozen networks sit in a tuple so they are not registered: checkpoints hold trained weights only.
        self._frozen = (
            teacher.eval().requires_grad_(False),
            vgg.eval().requires_grad_(False) if vgg else None,
        )

    @property
    def teacher(self) -> Generator:
        return self._frozen[0]

    @property
    def points(self) -> tuple[str, ...]:
        return self.adapters.points if self.adapters is not None else ()

    def generator(self) -> Generator:
        return self.student

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.stage.beta1, self.stage.beta2)
        g_params = list(self.student.parameters())
        if self.adapters is not None:
            g_params += list(self.adapters.parameters())  # optimised together with G, as the paper
        opts = {"G": torch.optim.Adam(g_params, lr=self.stage.lr_g, betas=betas)}
        if self.discriminator is not None and self.loss_cfg.gan > 0:
            opts["D"] = torch.optim.Adam(self.discriminator.parameters(), lr=self.stage.lr_d, betas=betas)
        return opts

    # -- pieces ----------------------------------------------------------------------------------
    def _extra(self, real_out: torch.Tensor) -> dict[str, Any]:
        # MUNIT renders the content of A in the style encoded from a real B image.
        return {"style_image": real_out} if self.student.family == "munit" else {}

    def _teacher_points(self) -> tuple[str, ...]:
        pts = self.points
        if self.loss_cfg.style > 0 and "style" not in pts:
            pts = pts + ("style",)
        return pts

    @torch.no_grad()
    def teacher_forward(
        self, real_in: torch.Tensor, real_out: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        teacher = on_device(self.teacher, real_in.device)
        pts = self._teacher_points()
        if pts:
            return teacher(real_in, features=pts, **self._extra(real_out))
        return teacher(real_in, **self._extra(real_out)), {}

    def student_forward(
        self, real_in: torch.Tensor, real_out: torch.Tensor, arch: ArchSpec | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pts = self._teacher_points()
        if pts:
            return self.student(real_in, arch=arch, features=pts, **self._extra(real_out))
        return self.student(real_in, arch=arch, **self._extra(real_out)), {}

    def _d_input(self, real_in: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([real_in, image], 1) if self.conditional_d else image

    def generator_losses(
        self,
        real_in: torch.Tensor,
        real_out: torch.Tensor,
        fake: torch.Tensor,
        s_feats: Mapping[str, torch.Tensor],
        t_out: torch.Tensor,
        t_feats: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Each weighted term of the student's objective (only the terms with a non-zero weight)."""
        cfg = self.loss_cfg
        out: dict[str, torch.Tensor] = {}
        if cfg.recon > 0:
            target = real_out if cfg.recon_target == "ground_truth" else t_out
            out["recon"] = cfg.recon * F.l1_loss(fake, target)
        if cfg.distill > 0 and self.adapters is not None:
            out["distill"] = cfg.distill * self.adapters(s_feats, t_feats)
        if cfg.style > 0:
            out["style"] = cfg.style * F.l1_loss(s_feats["style"], t_feats["style"])
        if cfg.gan > 0 and self.discriminator is not None:
            need_feats = cfg.feature_matching > 0
            d_fake = self.discriminator(self._d_input(real_in, fake), return_features=need_feats)
            if need_feats:
                d_fake, fake_feats = d_fake
                with torch.no_grad():
                    _, real_feats = self.discriminator(self._d_input(real_in, real_out), return_features=True)
                out["feature_matching"] = cfg.feature_matching * feature_matching_loss(real_feats, fake_feats)
            out["gan_g"] = cfg.gan * generator_gan_loss(cfg.gan_mode, d_fake)
        if cfg.vgg > 0:
            out["vgg"] = cfg.vgg * on_device(self._frozen[1], fake.device)(fake, real_out)
        return out

    def unlabelled_losses(
        self,
        fake: torch.Tensor,
        s_feats: Mapping[str, torch.Tensor],
        t_out: torch.Tensor,
        t_feats: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """The terms on inputs with no target: the teacher's output as reconstruction target (a
        pseudo-pair, weighted as ``loss.recon``) and the feature distillation. No discriminator
        term: the discriminator has no real image to tell these fakes from."""
        cfg = self.loss_cfg
        out: dict[str, torch.Tensor] = {}
        if cfg.recon > 0:
            out["unlabelled_recon"] = cfg.recon * F.l1_loss(fake, t_out)
        if cfg.distill > 0 and self.adapters is not None:
            out["unlabelled_distill"] = cfg.distill * self.adapters(s_feats, t_feats)
        return out

    # -- the step --------------------------------------------------------------------------------
    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """Forward every sampled width, update D once on their fakes, then update G (and adapters)."""
        device = next(self.student.parameters()).device
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        t_out, t_feats = self.teacher_forward(real_in, real_out)
        archs = list(self.arch_sampler(step))
        outs = [self.student_forward(real_in, real_out, arch) for arch in archs]
        logs: dict[str, float] = {}
        if "D" in optimizers:
            disc = self.discriminator
            disc.requires_grad_(True)
            optimizers["D"].zero_grad(set_to_none=True)
            d_real = disc(self._d_input(real_in, real_out))
            loss_d = torch.stack(
                [
                    discriminator_loss(
                        self.loss_cfg.gan_mode, d_real, disc(self._d_input(real_in, fake.detach()))
                    )
                    for fake, _ in outs
                ]
            ).mean()
            backward(loss_d, optimizers["D"])
            optimizers["D"].step()
            disc.requires_grad_(False)
            logs["loss_d"] = float(loss_d.detach())
        optimizers["G"].zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        terms: dict[str, float] = {}
        for fake, s_feats in outs:
            parts = self.generator_losses(real_in, real_out, fake, s_feats, t_out, t_feats)
            loss = sum(parts.values()) / len(outs)
            total = total + loss
            for k, v in parts.items():
                terms[k] = terms.get(k, 0.0) + float(v.detach()) / len(outs)
        if "U" in batch:
            # inputs without a target (data.unlabelled): they go through the same sampled widths
            extra = batch["U"].to(device)
            u_out, u_feats = self.teacher_forward(extra, extra)
            for arch in archs:
                parts = self.unlabelled_losses(*self.student_forward(extra, extra, arch), u_out, u_feats)
                total = total + sum(parts.values()) / len(archs)
                for k, v in parts.items():
                    terms[k] = terms.get(k, 0.0) + float(v.detach()) / len(archs)
        backward(total, optimizers["G"])
        optimizers["G"].step()
        if self.discriminator is not None:
            self.discriminator.requires_grad_(True)
        logs.update({f"loss_{k}": v for k, v in terms.items()})
        logs["loss_g"] = float(total.detach())
        return logs

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input (when it is an image), teacher output and student output side by side."""
        device = next(self.student.parameters()).device
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        was = self.student.training
        self.student.eval()
        t_out, _ = self.teacher_forward(real_in, real_out)
        s_out = self.student(real_in, **self._extra(real_out))
        self.student.train(was)
        cols = ([real_in] if real_in.shape[1] == 3 else []) + [real_out, t_out, s_out]
        return torch.cat(cols, dim=3)
