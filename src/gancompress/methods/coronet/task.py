"""The CoroNetGAN training Task: the pix2pix or CycleGAN objective, with pruning after each step.

The same Task trains the hypernetwork generator while it is pruned (a :class:`PruneController`
given) and the plain pruned generator during fine-tuning (no controller). Optional distillation
from the frozen teacher: L1 to its output and MSE at its feature points through 1×1 convs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...arch import ArchSpec
from ...errors import ConfigError
from ...models import Generator
from ...training.losses import discriminator_loss, generator_gan_loss
from ...training.precision import backward
from ...training.tasks.base import on_device
from ..common.data import split_batch
from ..common.recipe import StageConfig
from .control import PruneController
from .hypernet import HyperGenerator
from .recipe import CoronetLoss

OBJECTIVES = ("pix2pix", "cyclegan")


def feature_groups(generator: Generator) -> dict[str, str]:
    """The width group whose channels each feature point carries (found by narrowing each group)."""
    full = generator.feature_channels()
    names = [g.name for g in generator.width_groups]
    out: dict[str, str] = {}
    for i, group in enumerate(names):
        widths = list(generator.arch.widths)
        if widths[i] < 2:
            continue
        widths[i] -= 1
        narrow = generator.feature_channels(ArchSpec(generator.family, tuple(widths)))
        for point, c in narrow.items():
            if c != full[point]:
                out[point] = group
    return out


class LatentAdapters(nn.Module):
    """One 1×1 conv per feature point from the student's full width to the teacher's.

    A pruned student uses the input columns of its kept channels (``keep``), so the adapters follow
    the pruning; :meth:`narrowed` gives the adapters of the fixed pruned student.
    """

    def __init__(self, student: Mapping[str, int], teacher: Mapping[str, int], groups: Mapping[str, str]):
        super().__init__()
        missing = sorted(set(student) - set(teacher)) + sorted(set(student) - set(groups))
        if missing:
            raise ConfigError(f"feature point(s) {missing} cannot be distilled")
        self.groups = dict(groups)
        self.convs = nn.ModuleDict({p: nn.Conv2d(c, teacher[p], 1) for p, c in student.items()})
        for conv in self.convs.values():
            nn.init.normal_(conv.weight, 0.0, 0.02)  # as GAN Compression's distiller
            nn.init.zeros_(conv.bias)

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(self.convs)

    def forward(
        self,
        student_feats: Mapping[str, torch.Tensor],
        teacher_feats: Mapping[str, torch.Tensor],
        keep: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(student_feats.values())).device)
        for point, conv in self.convs.items():
            weight = conv.weight
            if keep is not None:
                weight = weight.index_select(1, keep[self.groups[point]])
            mapped = F.conv2d(student_feats[point], weight, conv.bias)
            total = total + F.mse_loss(mapped, teacher_feats[point])
        return total

    @torch.no_grad()
    def narrowed(self, keep: Mapping[str, torch.Tensor]) -> LatentAdapters:
        student = {p: int(keep[self.groups[p]].numel()) for p in self.convs}
        teacher = {p: c.out_channels for p, c in self.convs.items()}
        out = LatentAdapters(student, teacher, self.groups)
        for p, conv in out.convs.items():
            conv.weight.copy_(self.convs[p].weight.index_select(1, keep[self.groups[p]]))
            conv.bias.copy_(self.convs[p].bias)
        return out


class CoronetTask(nn.Module):
    """Train ``student`` (a :class:`HyperGenerator` being pruned, or a plain generator) with a GAN objective.

    pix2pix: ``D(input, output)`` with ``loss.gan_mode``, plus ``loss.recon`` × L1 to the ground truth.
    CycleGAN: the student maps A→B, ``reverse`` (a plain generator, not pruned, not exported) maps
    B→A; LSGAN on both domains, ``loss.cycle`` × both cycle L1s, ``loss.identity · loss.cycle`` ×
    both identity L1s. After each generator update, the controller (if any) takes its proximal step
    and updates the masks.

    Example:
        >>> task = CoronetTask(hyper, disc, CoronetLoss(), StageConfig(lr_g=2e-4), objective="pix2pix",
        ...                    controller=ctl, lr_latent=1e-3)
        >>> logs = task.training_step(batch, 0, task.configure_optimizers())
    """

    def __init__(
        self,
        student: HyperGenerator | Generator,
        discriminator: nn.Module | None,
        loss: CoronetLoss,
        stage: StageConfig,
        *,
        objective: str,
        teacher: Generator | None = None,
        controller: PruneController | None = None,
        lr_latent: float | None = None,
        reverse: Generator | None = None,
        discriminator_a: nn.Module | None = None,
        adapters: LatentAdapters | None = None,
        conditional_d: bool = True,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(f"loss.objective must be one of {list(OBJECTIVES)}, got {objective!r}")
        if loss.gan > 0 and discriminator is None:
            raise ConfigError("loss.gan > 0 needs a discriminator")
        if objective == "cyclegan" and reverse is None:
            raise ConfigError("the CycleGAN objective needs a reverse (B→A) generator")
        if objective == "cyclegan" and loss.gan > 0 and discriminator_a is None:
            raise ConfigError("the CycleGAN objective needs a discriminator for domain A")
        if (loss.distill_output > 0 or loss.distill_features > 0) and teacher is None:
            raise ConfigError("distillation (loss.distill_output / distill_features) needs a teacher")
        if loss.distill_features > 0 and adapters is None:
            raise ConfigError("loss.distill_features > 0 needs feature adapters")
        if controller is not None and not isinstance(student, HyperGenerator):
            raise ConfigError("pruning needs the hypernetwork generator")
        self.student = student
        self.discriminator = discriminator
        self.reverse = reverse
        self.discriminator_a = discriminator_a
        self.adapters = adapters
        self.controller = controller
        self.loss_cfg = loss
        self.stage = stage
        self.objective = objective
        self.lr_latent = lr_latent if lr_latent is not None else stage.lr_g
        self.conditional_d = conditional_d and objective == "pix2pix"
        # The teacher is frozen and kept out of the state dict: checkpoints hold trained weights only.
        self._frozen = (teacher.eval().requires_grad_(False) if teacher is not None else None,)

    @property
    def teacher(self) -> Generator | None:
        return self._frozen[0]

    @property
    def hyper(self) -> HyperGenerator | None:
        return self.student if isinstance(self.student, HyperGenerator) else None

    def generator(self) -> Generator:
        """The plain generator: for the hypernetwork, its kernels generated once and pruned channels removed."""
        hyper = self.hyper
        return hyper.extract() if hyper is not None else self.student

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.stage.beta1, self.stage.beta2)
        hyper = self.hyper
        if hyper is not None:
            main = hyper.hypernet_parameters() + hyper.main_parameters()
        else:
            main = [p for p in self.student.parameters() if p.requires_grad]
        if self.reverse is not None:
            main += list(self.reverse.parameters())
        if self.adapters is not None:
            main += list(self.adapters.parameters())
        groups: list[dict[str, Any]] = [{"params": main, "lr": self.stage.lr_g, "name": "generator"}]
        if hyper is not None:
            groups.append(
                {"params": list(hyper.latents.parameters()), "lr": self.lr_latent, "name": "latents"}
            )
        opts = {"G": torch.optim.Adam(groups, lr=self.stage.lr_g, betas=betas)}
        d_params = []
        for d in (self.discriminator, self.discriminator_a):
            if d is not None:
                d_params += list(d.parameters())
        if d_params and self.loss_cfg.gan > 0:
            opts["D"] = torch.optim.Adam(d_params, lr=self.stage.lr_d, betas=betas)
        return opts

    # -- pieces ------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.student.parameters()).device

    def _student(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        points = (
            self.adapters.points if self.adapters is not None and self.loss_cfg.distill_features > 0 else ()
        )
        if points:
            return self.student(x, features=points)
        return self.student(x), {}

    @torch.no_grad()
    def _teacher(self, x: torch.Tensor) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        cfg = self.loss_cfg
        teacher = self.teacher
        if teacher is None or (cfg.distill_output == 0 and cfg.distill_features == 0):
            return None, {}
        on_device(teacher, x.device)
        if cfg.distill_features > 0:
            return teacher(x, features=self.adapters.points)
        return teacher(x), {}

    def _distill(self, fake, s_feats, t_out, t_feats) -> dict[str, torch.Tensor]:
        cfg = self.loss_cfg
        out = {}
        if cfg.distill_output > 0 and t_out is not None:
            out["distill_output"] = cfg.distill_output * F.l1_loss(fake, t_out)
        if cfg.distill_features > 0 and t_feats:
            keep = self.hyper.keep_indices() if self.hyper is not None else None
            out["distill_features"] = cfg.distill_features * self.adapters(s_feats, t_feats, keep)
        return out

    def _d_step(self, optimizer, pairs: list[tuple[nn.Module, torch.Tensor, torch.Tensor]]) -> float:
        """One discriminator update on (discriminator, real input, fake input) triples."""
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self._device())
        for disc, real, fake in pairs:
            total = total + discriminator_loss(self.loss_cfg.gan_mode, disc(real), disc(fake.detach()))
        backward(total, optimizer)
        optimizer.step()
        return float(total.detach())

    def _prune(self, optimizers: Mapping[str, torch.optim.Optimizer], step: int) -> dict[str, float]:
        if self.controller is None:
            return {}
        lr = next(g["lr"] for g in optimizers["G"].param_groups if g.get("name") == "latents")
        return self.controller.step(self.hyper, lr, step)

    # -- the step ----------------------------------------------------------------------------------
    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """Update D, then G (with the hypernetwork and latents), then prune."""
        if self.objective == "cyclegan":
            logs = self._cyclegan_step(batch, optimizers)
        else:
            logs = self._pix2pix_step(batch, optimizers)
        logs.update(self._prune(optimizers, step))
        return logs

    def _d_input(self, real_in: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([real_in, image], 1) if self.conditional_d else image

    def _pix2pix_step(self, batch, optimizers) -> dict[str, float]:
        cfg = self.loss_cfg
        device = self._device()
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        fake, s_feats = self._student(real_in)
        t_out, t_feats = self._teacher(real_in)
        logs: dict[str, float] = {}
        disc = self.discriminator
        if "D" in optimizers:
            disc.requires_grad_(True)
            logs["loss_d"] = self._d_step(
                optimizers["D"], [(disc, self._d_input(real_in, real_out), self._d_input(real_in, fake))]
            )
            disc.requires_grad_(False)
        terms: dict[str, torch.Tensor] = {}
        if cfg.gan > 0 and disc is not None:
            terms["gan_g"] = cfg.gan * generator_gan_loss(cfg.gan_mode, disc(self._d_input(real_in, fake)))
        if cfg.recon > 0:
            terms["recon"] = cfg.recon * F.l1_loss(fake, real_out)
        terms.update(self._distill(fake, s_feats, t_out, t_feats))
        logs.update(self._g_update(optimizers, terms))
        if disc is not None:
            disc.requires_grad_(True)
        return logs

    def _cyclegan_step(self, batch, optimizers) -> dict[str, float]:
        cfg = self.loss_cfg
        device = self._device()
        if "A" not in batch or "B" not in batch:
            raise ConfigError(f"the CycleGAN objective needs batches with A and B; got keys {sorted(batch)}")
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        fake_b, s_feats = self._student(real_a)
        t_out, t_feats = self._teacher(real_a)
        fake_a = self.reverse(real_b)
        d_b, d_a = self.discriminator, self.discriminator_a
        logs: dict[str, float] = {}
        if "D" in optimizers:
            for d in (d_a, d_b):
                d.requires_grad_(True)
            logs["loss_d"] = self._d_step(optimizers["D"], [(d_b, real_b, fake_b), (d_a, real_a, fake_a)])
            for d in (d_a, d_b):
                d.requires_grad_(False)
        terms: dict[str, torch.Tensor] = {}
        if cfg.gan > 0 and d_b is not None:
            terms["gan_g"] = cfg.gan * (
                generator_gan_loss(cfg.gan_mode, d_b(fake_b)) + generator_gan_loss(cfg.gan_mode, d_a(fake_a))
            )
        if cfg.cycle > 0:
            rec_a = self.reverse(fake_b)
            rec_b = self.student(fake_a)
            terms["cycle"] = cfg.cycle * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))
        if cfg.identity > 0 and cfg.cycle > 0 and real_a.shape[1] == real_b.shape[1]:
            idt_b = self.student(real_b)
            idt_a = self.reverse(real_a)
            terms["identity"] = (
                cfg.identity * cfg.cycle * (F.l1_loss(idt_b, real_b) + F.l1_loss(idt_a, real_a))
            )
        terms.update(self._distill(fake_b, s_feats, t_out, t_feats))
        logs.update(self._g_update(optimizers, terms))
        for d in (d_a, d_b):
            if d is not None:
                d.requires_grad_(True)
        return logs

    def _g_update(self, optimizers, terms: Mapping[str, torch.Tensor]) -> dict[str, float]:
        if not terms:
            raise ConfigError("every generator loss weight is zero: nothing to train")
        optimizers["G"].zero_grad(set_to_none=True)
        total = sum(terms.values())
        backward(total, optimizers["G"])
        optimizers["G"].step()
        logs = {f"loss_{k}": float(v.detach()) for k, v in terms.items()}
        logs["loss_g"] = float(total.detach())
        return logs

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input (when it is an image), target / real B, teacher output and student output side by side."""
        device = self._device()
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        was = self.student.training
        self.student.eval()
        fake = self.student(real_in)
        self.student.train(was)
        cols = [real_in] if real_in.shape[1] == 3 else []
        cols.append(real_out)
        if self.teacher is not None:
            cols.append(on_device(self.teacher, device)(real_in))
        cols.append(fake)
        return torch.cat(cols, dim=3)
