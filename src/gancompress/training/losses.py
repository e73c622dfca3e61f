"""GAN objectives shared by teacher training and every compression method.

Each loss takes one logit map or a multi-scale list of them (averaged over scales), so the same
function serves a PatchGAN and a multi-scale discriminator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

GAN_MODES = ("hinge", "lsgan", "vanilla")


def as_list(feats: Any) -> list[torch.Tensor]:
    """A tensor, a list of tensors or a name → tensor mapping, as a list."""
    if isinstance(feats, Mapping):
        return list(feats.values())
    return [feats] if isinstance(feats, torch.Tensor) else list(feats)


def _maps(logits: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    # fp32 logits: under bf16/fp16 autocast the losses (means of squares, exps) stay in full precision.
    maps = list(logits) if isinstance(logits, list | tuple) else [logits]
    return [m.float() for m in maps]


def discriminator_loss(mode: str, real: Any, fake: Any) -> torch.Tensor:
    """Loss of the discriminator on real and fake logits (averaged over scales).

    Example:
        >>> loss_d = discriminator_loss("lsgan", disc(real_b), disc(fake_b.detach()))
    """
    losses = []
    for r, f in zip(_maps(real), _maps(fake)):
        if mode == "hinge":
            losses.append(F.relu(1 - r).mean() + F.relu(1 + f).mean())
        elif mode == "lsgan":
            losses.append(0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))))
        elif mode == "vanilla":
            losses.append(
                0.5
                * (
                    F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
                )
            )
        else:
            raise ConfigError(f"unknown gan_mode {mode!r}; known: {', '.join(GAN_MODES)}")
    return torch.stack(losses).mean()


def generator_gan_loss(mode: str, fake: Any) -> torch.Tensor:
    """Adversarial loss of the generator on fake logits (averaged over scales)."""
    losses = []
    for f in _maps(fake):
        if mode == "hinge":
            losses.append(-f.mean())
        elif mode == "lsgan":
            losses.append(F.mse_loss(f, torch.ones_like(f)))
        elif mode == "vanilla":
            losses.append(F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))
        else:
            raise ConfigError(f"unknown gan_mode {mode!r}; known: {', '.join(GAN_MODES)}")
    return torch.stack(losses).mean()


def feature_matching_loss(real_feats: Any, fake_feats: Any) -> torch.Tensor:
    """pix2pixHD/GauGAN feature matching: L1 between D's features of real and fake, mean over scales."""
    if real_feats and isinstance(real_feats[0], torch.Tensor):
        real_feats, fake_feats = [real_feats], [fake_feats]
    total = []
    for rs, fs in zip(real_feats, fake_feats):
        total.append(sum(F.l1_loss(f.float(), r.detach().float()) for r, f in zip(rs, fs)))
    return torch.stack(total).mean()


class ImagePool(nn.Module):
    """CycleGAN's history of generated images (Shrivastava et al.): D sees old fakes as well as new ones.

    Once full, each incoming image is, with probability 1/2, swapped with a random stored one (the
    stored one goes to D). The stored images are a buffer, so the pool is part of the Task's state
    dict and a resumed run continues with the same history; draws use the global torch generator,
    which checkpoints restore.

    Example:
        >>> pool = ImagePool(50)
        >>> loss_d = discriminator_loss("lsgan", disc(real_b), disc(pool.query(fake_b.detach())))
    """

    def __init__(self, size: int = 50) -> None:
        super().__init__()
        if size < 0:
            raise ConfigError(f"pool_size must be non-negative, got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(0))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        # Stored in fp32 whatever autocast produced: the pool is checkpointed state, and checkpoints
        # (and a run resumed in another precision) keep fp32 tensors.
        for image in images.detach().float():
            image = image.unsqueeze(0)
            stored = self.images
            if stored.dim() != 4 or stored.shape[1:] != image.shape[1:]:
                stored = image.new_zeros((0, *image.shape[1:]))  # first image, or the image size changed
            if stored.shape[0] < self.size:
                self.images = torch.cat([stored, image])
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(stored[i : i + 1].clone())
                stored[i : i + 1] = image
                self.images = stored
            else:
                out.append(image)
        return torch.cat(out)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001 - torch hook
        # The pool grows while training: take the stored images at whatever count they had.
        key = prefix + "images"
        if key in state_dict:
            self.images = state_dict[key].to(self.images.device).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
