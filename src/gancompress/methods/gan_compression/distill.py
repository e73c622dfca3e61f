"""Distillation for GAN Compression: feature adapters, the loss, and the one training Task.

The student learns from the teacher at its intermediate feature points (each student map goes
through a learnable 1×1 conv to the teacher's width; MSE), from a reconstruction target (the ground
truth for paired data, the teacher's output for unpaired data: pseudo-pairs, no cycle loss), and from
a discriminator. The same :class:`DistillTask` trains the mobile teacher (fixed widths), the
once-for-all supernet (one or three sampled widths per step) and the fine-tuned subnet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...arch import ArchSpec
from ...errors import CheckpointError, ConfigError
from ...layers import ElasticConv2d
from ...models import Generator, create_discriminator
from ...training.losses import discriminator_loss, feature_matching_loss, generator_gan_loss
from ...training.tasks.base import on_device
from .recipe import DiscriminatorConfig, LossConfig, StageConfig

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


# -- discriminator --------------------------------------------------------------------------------
def build_discriminator(
    cfg: DiscriminatorConfig, in_channels: int, out_channels: int
) -> tuple[nn.Module, str]:
    """The student's discriminator and a note on how it was initialised.

    With ``cfg.init_from`` (a safetensors file of the teacher's discriminator, or a directory holding
    ``discriminator.safetensors``) it starts from the teacher's weights, as the paper; else fresh.
    When a ``discriminator.json`` sits beside those weights (what ``gancompress train`` writes), the
    discriminator's architecture is the teacher's, read from it, rather than the recipe's.
    """
    channels = in_channels + out_channels if cfg.conditional else out_channels
    kwargs: dict[str, Any] = dict(
        in_channels=channels,
        base_width=cfg.base_width,
        num_layers=cfg.num_layers,
        norm=cfg.norm,
        spectral_norm=cfg.spectral_norm,
    )
    name = cfg.name
    path = None if cfg.init_from is None else Path(cfg.init_from)
    if path is not None and path.is_dir():
        path = path / "discriminator.safetensors"
    if path is not None and path.with_suffix(".json").is_file():
        name, kwargs = _saved_discriminator_config(path.with_suffix(".json"), in_channels, out_channels)
    elif name == "multiscale":
        kwargs["num_scales"] = cfg.num_scales
    disc = create_discriminator(name, **kwargs)
    if path is None:
        return disc, "fresh (no teacher discriminator given: set discriminator.init_from)"
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ...export.saved import load_state_strict

    if not path.is_file():
        raise CheckpointError(f"discriminator.init_from: {path} does not exist")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"discriminator.init_from: {path} is not a readable safetensors file ({exc})"
        ) from None
    load_state_strict(disc, state, str(path))
    return disc, f"initialised from the teacher's discriminator {path}"


def _saved_discriminator_config(
    path: Path, in_channels: int, out_channels: int
) -> tuple[str, dict[str, Any]]:
    """(name, constructor options) of a saved teacher discriminator from its ``discriminator.json``."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable discriminator config ({exc})") from None
    if not isinstance(data, dict) or "name" not in data or "in_channels" not in data:
        raise CheckpointError(f"{path}: a discriminator config needs 'name' and 'in_channels'")
    if data["in_channels"] not in (in_channels + out_channels, out_channels):
        raise CheckpointError(
            f"{path}: the teacher's discriminator reads {data['in_channels']} channels; this generator "
            f"gives {out_channels} ({in_channels + out_channels} with its input beside)"
        )
    keys = ("in_channels", "base_width", "num_layers", "norm", "spectral_norm")
    kwargs = {k: data[k] for k in keys if k in data}
    if data["name"] == "multiscale" and "num_scales" in data:
        kwargs["num_scales"] = data["num_scales"]
    return str(data["name"]), kwargs


def teacher_gan_mode(init_from: str | Path | None) -> str | None:
    """The GAN objective the teacher's discriminator was trained with, when its files record it.

    Read from ``discriminator.json`` (a ``gan_mode`` field) or from the teacher generator's
    ``config.json`` beside it (``meta.recipe.loss.gan_mode``, what ``gancompress train`` writes);
    None when neither says. A discriminator trained with the vanilla (BCE) loss gives logits far
    beyond the hinge margins, so under a hinge loss it starts saturated and never learns again.
    """
    import json

    if init_from is None:
        return None
    path = Path(init_from)
    folder = path if path.is_dir() else path.parent
    d_json = (path / "discriminator.safetensors" if path.is_dir() else path).with_suffix(".json")
    for source, keys in (
        (d_json, ("gan_mode",)),
        (folder / "config.json", ("meta", "recipe", "loss", "gan_mode")),
    ):
        try:
            value: Any = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return None


def discriminator_is_conditional(disc: nn.Module, out_channels: int) -> bool:
    """Whether ``disc`` reads (input, image) side by side rather than the image alone."""
    config = getattr(disc, "config", {})
    return int(config.get("in_channels", out_channels)) != out_channels


# -- the Task -------------------------------------------------------------------------------------
def split_batch(batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator input, real output image) of a paired/unpaired (A, B) or semantic (label, image) batch."""
    if "label" in batch:
        return batch["label"], batch["image"]
    if "A" in batch and "B" in batch:
        return batch["A"], batch["B"]
    raise ConfigError(f"a batch needs A and B (or label and image); got keys {sorted(batch)}")


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
            loss_d.backward()
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
        total.backward()
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
