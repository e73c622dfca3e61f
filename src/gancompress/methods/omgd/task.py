"""The OMGD training Task: two teachers learn the task online, the student learns only from them.

Each step (as the official ``MultiTeacherDistiller.optimize_parameters``): the teachers run on the
batch; every ``every`` steps their discriminator(s) and then the teachers themselves take one step
of the pix2pix or CycleGAN objective; the student then takes one step on the distillation terms
against the teachers' outputs of this step (detached): no discriminator ever sees the student.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...models import Generator
from ...training.losses import ImagePool, discriminator_loss, generator_gan_loss
from ...training.tasks.base import image_columns, on_device
from ..common.data import split_batch
from ..common.recipe import StageConfig
from .losses import ChannelDistillation, output_terms, vgg_features
from .recipe import OmgdLoss

OBJECTIVES = ("pix2pix", "cyclegan")


def init_normal(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """The official ``init_weights('normal')``: conv and linear weights N(0, gain), biases 0, BatchNorm
    scales N(1, gain)."""
    for m in module.modules():
        name = type(m).__name__
        weight = getattr(m, "weight", None)
        if not isinstance(weight, torch.Tensor):
            continue
        if "Conv" in name or "Linear" in name:
            nn.init.normal_(weight, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm" in name:
            nn.init.normal_(weight, 1.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module


class OmgdTask(nn.Module):
    """Train ``teachers`` (by name, ``wide`` first) with a GAN objective and ``student`` by distillation.

    pix2pix: ``discriminators[d_of[name]]`` judges ``(input, output)`` pairs; each teacher's loss is
    ``loss.gan`` × GAN + ``loss.recon`` × L1 to the ground truth. CycleGAN: ``reverses[name]`` maps
    B→A for each teacher; ``discriminators`` judge domain B and ``discriminators_a`` domain A; LSGAN
    (``loss.gan_mode``), cycle and identity losses, image pools. The student's loss is, per teacher,
    :func:`~.losses.output_terms` on the teacher's A→B output, plus ``loss.cd`` × channel-wise
    distillation from the wider teacher's feature points (``cd``). The VGG16 is frozen and kept out of
    the state dict.

    Example:
        >>> task = OmgdTask(student, {"wide": wide, "deep": deep}, discs, {"wide": "d", "deep": "d"},
        ...                 OmgdLoss(), StageConfig(), objective="pix2pix", vgg=vgg)
        >>> logs = task.training_step(batch, 0, task.configure_optimizers())
    """

    def __init__(
        self,
        student: Generator,
        teachers: Mapping[str, nn.Module],
        discriminators: Mapping[str, nn.Module],
        d_of: Mapping[str, str],
        loss: OmgdLoss,
        stage: StageConfig,
        *,
        objective: str,
        every: int = 1,
        reverses: Mapping[str, nn.Module] | None = None,
        discriminators_a: Mapping[str, nn.Module] | None = None,
        cd: ChannelDistillation | None = None,
        vgg: nn.Module | None = None,
        conditional_d: bool = True,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(f"loss.objective must be one of {list(OBJECTIVES)}, got {objective!r}")
        if not teachers:
            raise ConfigError("omgd needs at least one teacher")
        unknown = sorted(set(d_of.values()) - set(discriminators))
        if sorted(d_of) != sorted(teachers) or unknown:
            raise ConfigError(
                f"every teacher needs a discriminator; teachers {sorted(teachers)}, map {dict(d_of)}"
            )
        if objective == "cyclegan" and (reverses is None or sorted(reverses) != sorted(teachers)):
            raise ConfigError("the CycleGAN objective needs a reverse (B→A) generator for every teacher")
        if objective == "cyclegan" and discriminators_a is None:
            raise ConfigError("the CycleGAN objective needs discriminators for domain A")
        if loss.cd > 0 and (cd is None or "wide" not in teachers):
            raise ConfigError("loss.cd > 0 needs the wider teacher and feature connectors")
        if loss.uses_vgg and vgg is None:
            raise ConfigError("loss.style / loss.feature > 0 need a VGG16 feature network")
        terms = {k: getattr(loss, k) for k in ("ssim", "style", "feature", "tv")}
        if not any(v > 0 for v in terms.values()) and loss.cd == 0:
            raise ConfigError("every distillation weight (loss.ssim, style, feature, tv, cd) is zero")
        self.student = student
        self.teachers = nn.ModuleDict(dict(teachers))
        self.reverses = nn.ModuleDict(dict(reverses or {}))
        self.discriminators = nn.ModuleDict(dict(discriminators))
        self.discriminators_a = nn.ModuleDict(dict(discriminators_a or {}))
        self.d_of = dict(d_of)
        self.cd = cd if loss.cd > 0 else None
        self.loss_cfg = loss
        self.weights = terms
        self.stage = stage
        self.objective = objective
        self.every = every
        self.conditional_d = conditional_d and objective == "pix2pix"
        if objective == "cyclegan":
            self.pools = nn.ModuleDict(
                {f"{side}_{name}": ImagePool(loss.pool_size) for name in teachers for side in ("a", "b")}
            )
        self._frozen = (vgg.eval().requires_grad_(False) if vgg is not None else None,)

    @property
    def vgg(self) -> nn.Module | None:
        return self._frozen[0]

    def generator(self) -> Generator:
        return self.student

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.stage.beta1, self.stage.beta2)
        student = list(self.student.parameters()) + (
            list(self.cd.parameters()) if self.cd is not None else []
        )
        teachers = list(self.teachers.parameters()) + list(self.reverses.parameters())
        discs = list(self.discriminators.parameters()) + list(self.discriminators_a.parameters())
        opts = {
            "G": torch.optim.Adam(student, lr=self.stage.lr_g, betas=betas),
            "T": torch.optim.Adam(teachers, lr=self.stage.lr_g, betas=betas),
        }
        if discs and self.loss_cfg.gan > 0:
            opts["D"] = torch.optim.Adam(discs, lr=self.stage.lr_d, betas=betas)
        return opts

    # -- pieces ------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.student.parameters()).device

    def _teacher(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if name == "wide" and self.cd is not None:
            return self.teachers[name](x, features=self.cd.points)
        return self.teachers[name](x), {}

    def _discs(self, flag: bool) -> None:
        self.discriminators.requires_grad_(flag)
        self.discriminators_a.requires_grad_(flag)

    def _d_input(self, real_in: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([real_in, image], 1) if self.conditional_d else image

    def _student_step(self, optimizers, real_in, t_out, t_feats) -> dict[str, float]:
        if self.cd is not None:
            fake, s_feats = self.student(real_in, features=self.cd.points)
        else:
            fake, s_feats = self.student(real_in), {}
        vgg = on_device(self.vgg, fake.device) if self.vgg is not None else None
        fs = vgg_features(vgg, fake) if self.loss_cfg.uses_vgg else None
        terms: dict[str, torch.Tensor] = {}
        for name, out in t_out.items():
            for k, v in output_terms(fake, out, self.weights, vgg, fs).items():
                terms[f"{k}_{name}"] = v
        if self.cd is not None:
            terms["cd"] = self.loss_cfg.cd * self.cd(s_feats, t_feats)
        optimizers["G"].zero_grad(set_to_none=True)
        total = sum(terms.values())
        total.backward()
        optimizers["G"].step()
        logs = {f"loss_s_{k}": float(v.detach()) for k, v in terms.items()}
        logs["loss_s"] = float(total.detach())
        return logs

    # -- the step ----------------------------------------------------------------------------------
    def training_step(
        self, batch: Mapping[str, Any], step: int, optimizers: Mapping[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """The teachers' GAN step (every ``every`` steps), then the student's distillation step."""
        update = step % self.every == 0
        if self.objective == "cyclegan":
            return self._cyclegan_step(batch, optimizers, update)
        return self._pix2pix_step(batch, optimizers, update)

    def _pix2pix_step(self, batch, optimizers, update: bool) -> dict[str, float]:
        cfg = self.loss_cfg
        device = self._device()
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        outs: dict[str, torch.Tensor] = {}
        t_feats: dict[str, torch.Tensor] = {}
        with torch.set_grad_enabled(update):
            for name in self.teachers:
                outs[name], feats = self._teacher(name, real_in)
                t_feats.update(feats)
        logs: dict[str, float] = {}
        if update:
            gan = cfg.gan > 0 and "D" in optimizers
            if gan:
                self._discs(True)
                optimizers["D"].zero_grad(set_to_none=True)
                real = self._d_input(real_in, real_out)
                loss_d = sum(
                    discriminator_loss(
                        cfg.gan_mode,
                        self.discriminators[self.d_of[n]](real),
                        self.discriminators[self.d_of[n]](self._d_input(real_in, out.detach())),
                    )  # fmt: skip
                    for n, out in outs.items()
                )
                loss_d.backward()
                logs["loss_d"] = float(loss_d.detach())
                self._discs(False)
            optimizers["T"].zero_grad(set_to_none=True)
            total = torch.zeros((), device=device)
            for name, out in outs.items():
                if gan:
                    pred = self.discriminators[self.d_of[name]](self._d_input(real_in, out))
                    g = cfg.gan * generator_gan_loss(cfg.gan_mode, pred)
                    logs[f"loss_t_gan_{name}"] = float(g.detach())
                    total = total + g
                if cfg.recon > 0:
                    r = cfg.recon * F.l1_loss(out, real_out)
                    logs[f"loss_t_recon_{name}"] = float(r.detach())
                    total = total + r
            if not total.requires_grad:
                raise ConfigError("loss.gan and loss.recon are both zero: the teachers learn nothing")
            total.backward()
            if gan:
                optimizers["D"].step()
                self._discs(True)
            optimizers["T"].step()
        logs.update(self._student_step(optimizers, real_in, outs, t_feats))
        return logs

    def _cyclegan_step(self, batch, optimizers, update: bool) -> dict[str, float]:
        cfg = self.loss_cfg
        device = self._device()
        if "A" not in batch or "B" not in batch:
            raise ConfigError(f"the CycleGAN objective needs batches with A and B; got keys {sorted(batch)}")
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        outs: dict[str, torch.Tensor] = {}
        t_feats: dict[str, torch.Tensor] = {}
        logs: dict[str, float] = {}
        if not update:
            with torch.no_grad():
                for name in self.teachers:
                    outs[name], feats = self._teacher(name, real_a)
                    t_feats.update(feats)
            logs.update(self._student_step(optimizers, real_a, outs, t_feats))
            return logs
        gan = cfg.gan > 0 and "D" in optimizers
        same_channels = real_a.shape[1] == real_b.shape[1]
        fakes_a: dict[str, torch.Tensor] = {}
        self._discs(False)
        optimizers["T"].zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for name in self.teachers:
            g, r = self.teachers[name], self.reverses[name]
            fake_b, feats = self._teacher(name, real_a)
            t_feats.update(feats)
            fake_a = r(real_b)
            outs[name], fakes_a[name] = fake_b, fake_a
            terms: dict[str, torch.Tensor] = {}
            if gan:
                d_b, d_a = self.discriminators[self.d_of[name]], self.discriminators_a[self.d_of[name]]
                terms["gan"] = cfg.gan * (
                    generator_gan_loss(cfg.gan_mode, d_b(fake_b))
                    + generator_gan_loss(cfg.gan_mode, d_a(fake_a))
                )
            if cfg.cycle > 0:
                terms["cycle"] = cfg.cycle * (F.l1_loss(r(fake_b), real_a) + F.l1_loss(g(fake_a), real_b))
                if cfg.identity > 0 and same_channels:
                    terms["identity"] = (
                        cfg.identity
                        * cfg.cycle
                        * (F.l1_loss(g(real_b), real_b) + F.l1_loss(r(real_a), real_a))
                    )
            for k, v in terms.items():
                logs[f"loss_t_{k}_{name}"] = float(v.detach())
                total = total + v
        if not total.requires_grad:
            raise ConfigError("loss.gan and loss.cycle are both zero: the teachers learn nothing")
        total.backward()
        optimizers["T"].step()
        if gan:
            self._discs(True)
            optimizers["D"].zero_grad(set_to_none=True)
            loss_d = torch.zeros((), device=device)
            for name in self.teachers:
                d_b, d_a = self.discriminators[self.d_of[name]], self.discriminators_a[self.d_of[name]]
                fake_b = self.pools[f"b_{name}"].query(outs[name].detach())
                fake_a = self.pools[f"a_{name}"].query(fakes_a[name].detach())
                loss_d = loss_d + discriminator_loss(cfg.gan_mode, d_b(real_b), d_b(fake_b))
                loss_d = loss_d + discriminator_loss(cfg.gan_mode, d_a(real_a), d_a(fake_a))
            loss_d.backward()
            optimizers["D"].step()
            logs["loss_d"] = float(loss_d.detach())
        outs = {k: v.detach() for k, v in outs.items()}
        t_feats = {k: v.detach() for k, v in t_feats.items()}
        logs.update(self._student_step(optimizers, real_a, outs, t_feats))
        return logs

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Input, target / real B, each teacher's output and the student's, side by side."""
        device = self._device()
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        nets = [*self.teachers.values(), self.student]
        was = [n.training for n in nets]
        for n in nets:
            n.eval()
        cols = [real_in, real_out, *(t(real_in) for t in self.teachers.values()), self.student(real_in)]
        for n, w in zip(nets, was):
            n.train(w)
        return image_columns(*cols)
