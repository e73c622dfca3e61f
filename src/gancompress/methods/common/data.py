"""The data every method reads: the training set, the same images for evaluation, the held-out slice."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ...errors import ConfigError, DataError
from .recipe import DataConfig


def split_batch(batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator input, real output image) of a paired/unpaired (A, B) or semantic (label, image) batch."""
    if "label" in batch:
        return batch["label"], batch["image"]
    if "A" in batch and "B" in batch:
        return batch["A"], batch["B"]
    raise ConfigError(f"a batch needs A and B (or label and image); got keys {sorted(batch)}")


def train_transform(cfg: DataConfig):
    """The training crop and flip of a recipe's data block."""
    from ...data import TransformConfig

    return TransformConfig(
        load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess=cfg.preprocess, flip=cfg.flip
    )


def build_datasets(
    root: Path, cfg: DataConfig, refused: Sequence[str], method: str
) -> tuple[Dataset, Dataset, str]:
    """(training dataset with its random crop/flip, the same images with the evaluation transform, kind).

    ``refused`` are the dataset kinds the method does not take (refused by name).
    """
    from ...data import TransformConfig, build_dataset, detect_kind

    kind = detect_kind(root, "train") if cfg.kind == "auto" else cfg.kind
    if kind in refused:
        raise ConfigError(f"{method} does not take {kind} data ({root}); it takes image-to-image datasets")
    options: dict[str, Any] = {}
    if kind == "semantic" and cfg.num_classes is not None:
        options["num_classes"] = cfg.num_classes
    train = build_dataset(root, kind, "train", train_transform(cfg), direction=cfg.direction, **options)
    eval_options = dict(options, serial=True) if kind == "unpaired" else options
    evaluation = build_dataset(
        root, kind, "train", TransformConfig.for_eval(cfg.crop_size), direction=cfg.direction, **eval_options
    )
    return train, evaluation, kind


def split_holdout(n: int, holdout: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): the last ``holdout`` images are kept out of training."""
    if holdout >= n:
        raise DataError(f"data.holdout is {holdout} but the training split has only {n} images")
    return list(range(n - holdout)), list(range(n - holdout, n))


def stack_batches(
    ds: Dataset, indices: Sequence[int], batch_size: int, family: str, device: torch.device | str = "cpu"
) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
    """(inputs, real outputs, extra forward arguments) batches of ``ds[indices]``, on ``device``.

    MUNIT generators take a style image: the real output is passed as ``style_image``.
    """
    out = []
    for start in range(0, len(indices), batch_size):
        pairs = [split_batch(ds[i]) for i in indices[start : start + batch_size]]
        x = torch.stack([p[0] for p in pairs]).to(device)
        y = torch.stack([p[1] for p in pairs]).to(device)
        out.append((x, y, {"style_image": y} if family == "munit" else {}))
    return out


def slice_id(ds: Dataset, indices: Sequence[int]) -> str:
    """A short hash of the files of ``ds[indices]`` (so cached scores belong to exactly this slice)."""
    names = []
    for i in indices:
        item = ds[i]
        names.append(str(item.get("A_path", item.get("path", i))))
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
