"""FID and KID on fixed features against reference computations; the real-statistics cache."""

import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from gancompress.errors import GanCompressError
from gancompress.metrics.fid import (
    FeatureStats,
    fid_from_stats,
    frechet_distance,
    kernel_distance,
    torchmetrics_fid,
    torchmetrics_kid,
)
from gancompress.metrics.stats import load_stats, save_stats, stats_key, stats_path


def _features(seed, n=300, d=16, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(100 + d).normal(size=(d, d)) / np.sqrt(d)  # one distribution per d
    return rng.normal(size=(n, d)) @ mix * scale + shift


def _reference_fid(a, b):
    """The textbook formula with scipy's sqrtm, written out independently of the library."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("shift,scale", [(0.0, 1.0), (0.7, 1.0), (0.0, 1.8), (-0.3, 0.5)])
def test_fid_matches_scipy_sqrtm_reference(shift, scale):
    real, fake = _features(0), _features(1, shift=shift, scale=scale)
    ours = fid_from_stats(FeatureStats.from_features(real), FeatureStats.from_features(fake))
    assert ours == pytest.approx(_reference_fid(real, fake), abs=1e-3)


def test_fid_closed_form_for_gaussians_with_commuting_covariances():
    # Diagonal covariances commute: FID = |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2 exactly.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    expected = 5.0 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_fid_singular_covariance_is_finite():
    # Fewer samples than dimensions: the product is singular and sqrtm needs the offset.
    real, fake = _features(2, n=5, d=32), _features(3, n=5, d=32, shift=1.0)
    value = fid_from_stats(FeatureStats.from_features(real), FeatureStats.from_features(fake))
    assert np.isfinite(value) and value > 0


def test_fid_matches_torchmetrics_on_a_fixed_extractor():
    class Flatten(torch.nn.Module):
        num_features = 12

        def forward(self, images):  # [-1, 1] images of 3x2x2 → their 12 pixel values as features
            return images.flatten(1)

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(200, 3, 2, 2, generator=gen) * 2 - 1
    fake = (torch.rand(200, 3, 2, 2, generator=gen) * 1.6 - 0.5).clamp(-1, 1)
    metric = torchmetrics_fid(Flatten())
    metric.update((real + 1) / 2, real=True)
    metric.update((fake + 1) / 2, real=False)
    ours = fid_from_stats(
        FeatureStats.from_features(real.flatten(1).double()),
        FeatureStats.from_features(fake.flatten(1).double()),
    )
    assert float(metric.compute()) == pytest.approx(ours, rel=1e-4, abs=1e-3)


def test_kid_matches_torchmetrics_with_one_full_subset():
    class Flatten(torch.nn.Module):
        num_features = 12

        def forward(self, images):
            return images.flatten(1)

    gen = torch.Generator().manual_seed(1)
    real = torch.rand(60, 3, 2, 2, generator=gen) * 2 - 1
    fake = (torch.rand(60, 3, 2, 2, generator=gen) * 2 - 0.6).clamp(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its note that it keeps every feature in memory
        metric = torchmetrics_kid(Flatten(), subsets=1, subset_size=60)
    metric.update((real + 1) / 2, real=True)
    metric.update((fake + 1) / 2, real=False)
    expected = float(metric.compute()[0])
    # A subset of every sample is a permutation of the whole set: the unbiased MMD is the same.
    ours, std = kernel_distance(
        real.flatten(1).double().numpy(), fake.flatten(1).double().numpy(), subsets=1, subset_size=60
    )
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-6) and np.isnan(std)  # one subset: no spread


def test_kid_orders_by_distance():
    real = _features(4, n=400)
    near, far = _features(5, n=400, shift=0.1), _features(6, n=400, shift=1.0)
    same, _ = kernel_distance(real, _features(7, n=400), subsets=20, subset_size=200)
    k_near, _ = kernel_distance(real, near, subsets=20, subset_size=200)
    k_far, _ = kernel_distance(real, far, subsets=20, subset_size=200)
    assert abs(same) < 0.01 and same < k_near < k_far
    with pytest.raises(GanCompressError, match="at least 2"):
        kernel_distance(real[:1], far)


def test_feature_stats_need_two_vectors():
    with pytest.raises(GanCompressError, match="at least 2 feature vectors"):
        FeatureStats.from_features(np.zeros((1, 4)))


def test_stats_cache_round_trip_and_damaged_file(tmp_path):
    stats = FeatureStats.from_features(_features(8, n=50, d=6))
    key = stats_key(tmp_path, "test", "AtoB", "vgg16-hed/relu5_2-gap@native", 64, -1)
    assert key != stats_key(tmp_path, "test", "AtoB", "domain/fonts", 64, -1)  # one entry per extractor
    path = stats_path(key, tmp_path / "stats")
    save_stats(path, stats, "vgg16-hed")
    back = load_stats(path)
    assert np.array_equal(back.mu, stats.mu) and np.array_equal(back.sigma, stats.sigma) and back.count == 50
    path.write_bytes(b"not an npz")
    assert load_stats(path) is None  # recomputed by the caller, never trusted
