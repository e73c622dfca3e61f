"""``evaluate_generator``: one call from a generator and a dataset folder to a JSON-able table of metrics."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..data import TransformConfig, build_dataset, read_metadata
from ..data.fonts import codepoint_of
from ..errors import ConfigError, GanCompressError
from . import paired as paired_metrics
from .extractors import create_extractor, extractor_name
from .fid import FeatureStats, fid_from_stats, kernel_distance
from .finite import OUTPUT_HINT, check_finite, model_name
from .segmentation import confusion_matrix, mean_iou
from .stats import extract_features, load_stats, save_stats, stats_key, stats_path

KINDS = ("paired", "unpaired", "semantic")


def _quantize(images: torch.Tensor) -> torch.Tensor:
    # Published FIDs score generated images saved as 8-bit files; round-trip so ours match.
    return images.clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1)


def _batches(images: torch.Tensor, batch_size: int):
    for i in range(0, images.shape[0], batch_size):
        yield images[i : i + batch_size]


def _loader(ds, batch_size: int, max_images: int | None) -> DataLoader:
    if max_images is not None:
        ds = Subset(ds, range(min(max_images, len(ds))))
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


def _real_images(
    root: Path, kind: str, splits: tuple[str, ...], size: int, direction: str, batch_size: int, max_images
):
    """The real target-domain images the generated ones are compared with, as one [-1, 1] tensor."""
    cfg = TransformConfig.for_eval(size)
    chunks = []
    for split in splits:
        options = {"serial": True} if kind == "unpaired" else {}
        ds = build_dataset(root, kind, split, cfg, direction=direction, **options)
        key = "image" if kind == "semantic" else "B"
        if kind == "unpaired":
            # Every B image once (the dataset's length is the larger domain, with A indexed first).
            from ..data.unpaired import UnpairedDataset

            assert isinstance(ds, UnpairedDataset)
            ds = Subset(ds, range(len(ds.paths_b)))
        for batch in _loader(ds, batch_size, max_images):
            chunks.append(batch[key])
    return torch.cat(chunks, 0)


def _content_accuracy(
    extractor,
    fakes: torch.Tensor,
    a_paths: list[str],
    info: dict[str, Any],
    direction: str,
    batch_size: int,
    device: str,
):
    """Share of generated images the domain classifier assigns to the right content class."""
    meta = extractor.info
    if meta.get("content") == "glyph":
        classes = {int(c): i for i, c in enumerate(meta["classes"])}
        targets = [classes.get(codepoint_of(p) or -1, -1) for p in a_paths]
    elif meta.get("content") == "target_class":
        # The class of the domain being generated: B for AtoB, A for BtoA.
        target_name = (info.get("domains") or {}).get("B" if direction == "AtoB" else "A")
        if target_name not in meta["classes"]:
            return None
        targets = [meta["classes"].index(target_name)] * len(a_paths)
    else:
        return None
    keep = [i for i, t in enumerate(targets) if t >= 0]
    if not keep:
        return None
    preds = []
    with torch.no_grad():
        for batch in _batches(fakes[keep], batch_size):
            preds.append(extractor.predict(batch.to(device)).argmax(1).cpu())
    pred = torch.cat(preds)
    tgt = torch.tensor([targets[i] for i in keep])
    return {
        "content_accuracy": float((pred == tgt).float().mean()),
        "content_measure": meta.get("content_description", meta.get("content")),
        "content_images": len(keep),
    }


def evaluate_generator(
    generator: nn.Module,
    data_root: str | Path,
    *,
    kind: str = "paired",
    direction: str = "AtoB",
    extractors: tuple[str | nn.Module, ...] = ("domain", "vgg"),
    batch_size: int = 16,
    device: str = "cpu",
    max_images: int | None = None,
    split: str = "test",
    real_splits: tuple[str, ...] | None = None,
    image_size: int | None = None,
    inception_weights: str | None = None,
    vgg_resize: int | None = None,
    segmenter: str | nn.Module | None = "auto",
    cache: bool = True,
    stats_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Generate the ``split`` of ``data_root`` with ``generator`` and score it; returns a JSON-able dict.

    Paired data gets PSNR/SSIM/L1 against the ground truth; every extractor gets FID and KID against
    real target images (paired and semantic: the test split; unpaired: train + test, as CycleGAN's
    papers do), and a domain extractor also its content accuracy. Extractors that cannot be loaded
    are listed under ``"skipped"`` with the reason (and a warning), not silently dropped.
    VGG features are taken at the images' own size unless ``vgg_resize`` is given (224 is what VGG
    was trained at, and about 12x slower on CPU for 64-px glyphs). Semantic data also gets mIoU from
    ``segmenter``: a module, a shipped segmenter's name, or "auto" (the dataset's own, when shipped).

    Example:
        >>> evaluate_generator(g, ensure_builtin_dataset("fonts"), extractors=("domain", "vgg"))["extractors"]
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    start = time.perf_counter()
    root = Path(data_root)
    info = read_metadata(root) or {}
    size = int(image_size or info.get("size") or 256)
    if real_splits is None:
        real_splits = ("train", split) if kind == "unpaired" else (split,)
    options = {"serial": True} if kind == "unpaired" else {}
    dataset = build_dataset(root, kind, split, TransformConfig.for_eval(size), direction=direction, **options)
    if kind == "unpaired":
        dataset = Subset(dataset, range(len(dataset.paths_a)))
    in_key, real_key = ("label", "image") if kind == "semantic" else ("A", "B")

    # -- validate before allocating (export/limits.py): the images and the activations at this size
    from ..export.limits import check_inference_memory

    n_images = len(dataset) if max_images is None else min(len(dataset), max_images)  # type: ignore[arg-type]
    check_inference_memory(
        generator,
        (size, size),
        what=f"evaluation at image size {size} (--size)",
        batch=batch_size,
        count=2 * max(1, -(-n_images // batch_size)),
    )
    # -- end
    generator = generator.to(device).eval()
    fakes, reals, a_paths, labels = [], [], [], []
    with torch.no_grad():
        for batch in _loader(dataset, batch_size, max_images):
            fake = generator(batch[in_key].to(device))
            if isinstance(fake, (tuple, list)):
                fake = fake[0]
            names = list(batch["A_path"] if "A_path" in batch else batch["path"])
            check_finite(  # NaN would make every metric meaningless, and FID's sqrtm may never return
                fake,
                f"the outputs of {model_name(generator)} for {Path(names[0]).name}"
                + (f" … ({len(names)} images)" if len(names) > 1 else ""),
                OUTPUT_HINT,
            )
            if fake.shape[1] != 3:
                raise GanCompressError(
                    f"the generator returned {fake.shape[1]} channels; RGB images (3) are expected"
                )
            fakes.append(_quantize(fake.float().cpu()))
            reals.append(batch[real_key])
            a_paths += list(batch["A_path"] if "A_path" in batch else batch["path"])
            if kind == "semantic":
                labels.append(batch["label"])
    fake_all, real_pairs = torch.cat(fakes), torch.cat(reals)
    result: dict[str, Any] = {
        "generator": type(generator).__name__,
        "data": str(root),
        "dataset": info.get("name"),
        "kind": kind,
        "split": split,
        "direction": direction,
        "image_size": size,
        "num_images": int(fake_all.shape[0]),
        "real_splits": list(real_splits),
        "skipped": {},
    }
    # Unpaired test sets are scored as pairs only when A and B hold the same names (the built-in
    # fonts test sets do); the serial dataset pairs A[i] with B[i mod len(B)].
    paths_b = dataset.dataset.paths_b if kind == "unpaired" else []
    names_match = kind != "unpaired" or all(
        Path(p).stem == paths_b[i % len(paths_b)].stem for i, p in enumerate(a_paths)
    )
    if fake_all.shape == real_pairs.shape and names_match:
        result["paired"] = {
            "psnr": float(paired_metrics.psnr(fake_all, real_pairs).mean()),
            "ssim": float(paired_metrics.ssim(fake_all, real_pairs).mean()),
            "l1": float(paired_metrics.l1(fake_all, real_pairs).mean()),
        }
    if isinstance(segmenter, str) and kind == "semantic":
        from .segmentation import list_segmenters, load_segmenter

        if segmenter != "auto":
            segmenter = load_segmenter(segmenter)
        elif info.get("name") in list_segmenters():
            segmenter = load_segmenter(info["name"])
        else:
            result["skipped"]["segmenter"] = f"no shipped segmenter for dataset {info.get('name') or root}"
            segmenter = None
    if isinstance(segmenter, nn.Module) and kind == "semantic":
        num_classes = int(info.get("num_classes") or labels[0].shape[1])
        conf = np.zeros((num_classes, num_classes), np.int64)
        with torch.no_grad():
            segmenter = segmenter.to(device).eval()
            for fb, lb in zip(_batches(fake_all, batch_size), _batches(torch.cat(labels), batch_size)):
                pred = segmenter(fb.to(device)).argmax(1).cpu()
                conf += confusion_matrix(pred, lb[:, :num_classes].argmax(1), num_classes)
        miou, per_class = mean_iou(conf)
        result["segmentation"] = {
            "miou": miou,
            "per_class_iou": per_class,
            "segmenter": extractor_name(segmenter),
        }

    real_all = None
    result["extractors"] = {}
    for spec in extractors:
        label = spec if isinstance(spec, str) else extractor_name(spec)
        try:
            extractor = create_extractor(
                spec,
                dataset_info=info,
                inception_weights=inception_weights,
                vgg_resize=vgg_resize,
                target_domain="B" if direction == "AtoB" else "A",
            ).to(device)
        except GanCompressError as exc:
            warnings.warn(f"extractor {label!r} skipped: {exc}", RuntimeWarning, stacklevel=2)
            result["skipped"][label] = str(exc)
            continue
        name = extractor_name(extractor)
        key = stats_key(root, "+".join(real_splits), direction, name, size, max_images or -1)
        path = stats_path(key, stats_dir)
        real_stats = load_stats(path) if cache else None
        cached = real_stats is not None
        if real_stats is None:
            if real_all is None:
                real_all = _real_images(root, kind, real_splits, size, direction, batch_size, max_images)
            real_stats = FeatureStats.from_features(
                extract_features(extractor, _batches(real_all, batch_size), device)
            )
            if cache:
                save_stats(path, real_stats, name)
        fake_feats = extract_features(extractor, _batches(fake_all, batch_size), device)
        fake_stats = FeatureStats.from_features(fake_feats)
        kid, kid_std = kernel_distance(real_stats.sample, fake_feats, subsets=50, subset_size=1000)
        entry = {
            "extractor": name,
            "fid": fid_from_stats(real_stats, fake_stats),
            "kid": kid,
            "kid_std": None if np.isnan(kid_std) else kid_std,
            "num_real": real_stats.count,
            "num_fake": int(fake_feats.shape[0]),
            "real_stats_cached": cached,
            "comparable_with_published_fid": name == "inception-v3-fid",
        }
        if hasattr(extractor, "predict") and hasattr(extractor, "info"):
            acc = _content_accuracy(extractor, fake_all, a_paths, info, direction, batch_size, device)
            if acc:
                entry.update(acc)
        result["extractors"][label] = entry
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result
