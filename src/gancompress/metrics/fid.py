"""Fréchet distance and kernel (KID) distance between two sets of features.

The maths is the standard one (Heusel et al. 2017; Bińkowski et al. 2018) in float64 numpy/scipy, on
features from any extractor, so real statistics can be cached and reused; ``torchmetrics_fid`` gives
the same numbers through torchmetrics for users who want its streaming API.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import linalg

from ..errors import GanCompressError
from .finite import check_finite


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set, plus a seeded subsample of the features for KID."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int
    sample: np.ndarray

    @classmethod
    def from_features(
        cls, feats: np.ndarray | torch.Tensor, max_sample: int = 2000, seed: int = 0
    ) -> FeatureStats:
        feats = (
            feats.detach().cpu().double().numpy()
            if isinstance(feats, torch.Tensor)
            else np.asarray(feats, np.float64)
        )
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise GanCompressError(f"need at least 2 feature vectors of shape (N, D), got {feats.shape}")
        check_finite(feats, "the feature vectors")
        idx = np.random.default_rng(seed).permutation(feats.shape[0])[:max_sample]
        return cls(feats.mean(0), np.cov(feats, rowvar=False), feats.shape[0], feats[np.sort(idx)])


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 sqrt(S1 S2)), as pytorch-fid computes it (offset when singular)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise GanCompressError(f"feature statistics differ in shape: {mu1.shape} vs {mu2.shape}")
    # sqrtm can run without end on NaN: refuse non-finite statistics first (bounded time)
    for name, value in (("mean", mu1), ("covariance", sigma1), ("mean", mu2), ("covariance", sigma2)):
        check_finite(value, f"the feature {name}s")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # A singular product is expected with fewer samples than dimensions; it is handled just below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        # Fewer samples than dimensions makes the product singular: add eps to the diagonals.
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(real: FeatureStats, fake: FeatureStats) -> float:
    return frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)


def kernel_distance(
    real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, mean and std over random subsets.

    When both sets are no larger than ``subset_size`` every subset is the whole of both sets: the
    value is computed once and its std is NaN (there is no spread to measure).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    check_finite(real, "the real feature vectors")
    check_finite(fake, "the generated feature vectors")
    m = min(subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise GanCompressError("KID needs at least 2 real and 2 generated feature vectors")
    whole = m == real.shape[0] == fake.shape[0]
    if whole:
        subsets = 1
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(real.shape[0], m, replace=False)]
        y = fake[rng.choice(fake.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), (float("nan") if whole else float(np.std(values)))


class _ToExtractorInput(torch.nn.Module):
    """torchmetrics feeds [0, 1] floats (normalize=True); our extractors take [-1, 1]."""

    def __init__(self, extractor: torch.nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self.num_features = int(extractor.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images * 2 - 1)


def torchmetrics_fid(extractor: torch.nn.Module, **kwargs):
    """``torchmetrics.image.fid.FrechetInceptionDistance`` on one of our extractors (update with [0, 1] images).

    Example:
        >>> fid = torchmetrics_fid(create_extractor("vgg"))
        >>> fid.update(real01, real=True); fid.update(fake01, real=False); fid.compute()
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=_ToExtractorInput(extractor), normalize=True, **kwargs)


def torchmetrics_kid(extractor: torch.nn.Module, **kwargs):
    """``torchmetrics.image.kid.KernelInceptionDistance`` on one of our extractors ([0, 1] images)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    return KernelInceptionDistance(feature=_ToExtractorInput(extractor), normalize=True, **kwargs)
