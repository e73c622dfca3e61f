"""Paired-image metrics (generated vs. ground truth): PSNR, SSIM (torchmetrics) and L1."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from .finite import OUTPUT_HINT, check_finite


def _check(fake: torch.Tensor, real: torch.Tensor) -> None:
    if fake.shape != real.shape or fake.ndim != 4:
        raise ValueError(
            f"paired metrics need two NCHW batches of one shape, got {tuple(fake.shape)} and {tuple(real.shape)}"
        )
    check_finite(fake, "the generated images", OUTPUT_HINT)
    check_finite(real, "the reference images")


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of [-1, 1] images, computed on the [0, 1] scale (data range 1)."""
    _check(fake, real)
    f, r = (fake.float().clamp(-1, 1) + 1) / 2, (real.float().clamp(-1, 1) + 1) / 2
    return peak_signal_noise_ratio(f, r, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Gaussian window 11, sigma 1.5) of [-1, 1] images on the [0, 1] scale."""
    _check(fake, real)
    f, r = (fake.float().clamp(-1, 1) + 1) / 2, (real.float().clamp(-1, 1) + 1) / 2
    return structural_similarity_index_measure(f, r, data_range=1.0, reduction="none")


def l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error on the [-1, 1] scale (the pix2pix reconstruction loss)."""
    _check(fake, real)
    return (fake.float() - real.float()).abs().mean(dim=(1, 2, 3))
