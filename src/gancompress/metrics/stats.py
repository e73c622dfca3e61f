"""Real-image feature statistics, cached per (dataset path, split, extractor, image size).

Computing real statistics is often the slowest part of an evaluation and must be identical between
runs that are compared, so they are stored as ``.npz`` files in ``$GANCOMPRESS_CACHE/stats``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..data.builtin import cache_dir
from ..utils.files import atomic_write_bytes
from .fid import FeatureStats
from .finite import OUTPUT_HINT, check_finite, model_name

STATS_VERSION = 1


def stats_key(dataset: str | Path, split: str, domain: str, extractor: str, size: int, count: int) -> str:
    raw = f"v{STATS_VERSION}|{Path(dataset).resolve()}|{split}|{domain}|{extractor}|{size}|{count}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def stats_path(key: str, root: str | Path | None = None) -> Path:
    return (Path(root) if root else cache_dir() / "stats") / f"{key}.npz"


def load_stats(path: Path) -> FeatureStats | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            stats = FeatureStats(z["mu"], z["sigma"], int(z["count"]), z["sample"])
        for value in (stats.mu, stats.sigma, stats.sample):
            if not np.isfinite(np.asarray(value, np.float64)).all():
                return None  # non-finite cached statistics: recomputed, never used
        return stats
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return None  # a damaged cache entry is recomputed, not trusted


def save_stats(path: Path, stats: FeatureStats, extractor: str) -> None:
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mu, sigma=stats.sigma, count=stats.count, sample=stats.sample, extractor=extractor)
    atomic_write_bytes(path, buf.getvalue())


@torch.no_grad()
def extract_features(
    extractor: torch.nn.Module, batches: Iterable[torch.Tensor], device: str = "cpu"
) -> np.ndarray:
    """Features of every image of ``batches`` (each [-1, 1] NCHW), as one float64 (N, D) array."""
    out = []
    for batch in batches:
        check_finite(batch, "the images given to the feature extractor", OUTPUT_HINT)
        feats = extractor(batch.to(device)).double().cpu().numpy()
        check_finite(feats, f"the features of {model_name(extractor)}")
        out.append(feats)
    return np.concatenate(out, 0)
