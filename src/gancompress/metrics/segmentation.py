"""mIoU of a segmentation model on generated images, against the label maps they were generated from.

``labels2sat`` ships its own small segmentation net (``assets/segmenters/labels2sat.*``, trained by
``scripts/train_domain_extractors.py labels2sat`` on the training tiles): the role DRN-D-105 plays
for Cityscapes. Any ``nn.Module`` mapping [-1, 1] images to (N, classes, H, W) logits also works.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = target class, columns = predicted class."""
    pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    idx = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


def mean_iou(confusion: np.ndarray) -> tuple[float, list[float | None]]:
    """Mean IoU over classes present in target or prediction, and the per-class IoUs (None if absent)."""
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    per_class = [float(i / u) if u > 0 else None for i, u in zip(inter, union)]
    present = [v for v in per_class if v is not None]
    return (float(np.mean(present)) if present else float("nan")), per_class


ARCH = "segnet-v1"


class _Stage(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class SegmentationNet(nn.Module):
    """A small U-Net: RGB images in [-1, 1] of any size → per-pixel class logits at the same size.

    Images are resized to ``in_size`` inside (the net was trained at that size) and the logits are
    resized back, so it scores generated images at whatever size the generator makes them.
    """

    def __init__(self, in_size: int, widths: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.in_size = in_size
        self.down = nn.ModuleList()
        in_ch = 3
        for w in widths:
            self.down.append(_Stage(in_ch, w))
            in_ch = w
        self.up = nn.ModuleList(
            _Stage(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.num_classes = num_classes

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder stages' outputs, finest first (the input resized to ``in_size``)."""
        x = images
        if tuple(images.shape[-2:]) != (self.in_size, self.in_size):
            x = F.interpolate(
                x, size=(self.in_size, self.in_size), mode="bilinear", align_corners=False, antialias=True
            )
        skips = []
        for i, stage in enumerate(self.down):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        return skips

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-2:]
        skips = self.encode(images)
        x = skips[-1]
        for stage, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], 1))
        logits = self.head(x)
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits


class Segmenter(nn.Module):
    """A loaded segmentation net with its metadata (classes, training data, held-out mIoU)."""

    def __init__(self, model: SegmentationNet, info: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.info = info

    @property
    def name(self) -> str:
        return f"segmenter/{self.info['name']}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


class SegmenterFeatures(nn.Module):
    """A domain-FID feature space from a shipped segmenter: every encoder stage's output, average-pooled
    and concatenated (16 + 32 + 64 + 96 = 208 features for ``labels2sat``).

    The segmenter was trained on real satellite tiles only, so this is a feature space for generated
    satellite images (maps A → B, labels2sat), as the glyph classifier is for fonts; the finest stage
    keeps colour and texture statistics in it, the deepest the land-cover content. It has no
    ``predict``: there are no per-image classes to score content accuracy with.
    """

    def __init__(self, segmenter: Segmenter) -> None:
        super().__init__()
        self.model = segmenter.model
        self.segmenter_info = segmenter.info
        self.num_features = sum(stage[0].out_channels for stage in self.model.down)

    @property
    def name(self) -> str:
        return f"segmenter/{self.segmenter_info['name']}/encoder-gap"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)) for x in self.model.encode(images)], 1)


def segmenters_dir() -> Path:
    return Path(str(resources.files("gancompress") / "assets" / "segmenters"))


def list_segmenters() -> list[str]:
    return sorted(p.stem for p in segmenters_dir().glob("*.json")) if segmenters_dir().is_dir() else []


def build_segmentation_net(arch: dict[str, Any]) -> SegmentationNet:
    if arch.get("name") != ARCH:
        raise CheckpointError(f"unknown segmentation arch {arch.get('name')!r} (known: {ARCH})")
    return SegmentationNet(int(arch["in_size"]), tuple(arch["widths"]), int(arch["num_classes"]))


def load_segmenter(name_or_path: str | Path) -> Segmenter:
    """A shipped segmenter by name ("labels2sat") or a ``.json`` path beside its ``.safetensors``.

    Example:
        >>> seg = load_segmenter("labels2sat"); seg.info["accuracy"]
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(name_or_path)
    meta = path if path.suffix == ".json" else segmenters_dir() / f"{name_or_path}.json"
    if not meta.is_file():
        known = ", ".join(list_segmenters()) or "(none shipped)"
        raise CheckpointError(f"no segmenter {name_or_path!r} ({meta} does not exist); known: {known}")
    try:
        info = json.loads(meta.read_text())
        if info.get("kind") != "segmenter":
            raise CheckpointError(f"{meta} is not a segmenter (kind {info.get('kind')!r})")
        model = build_segmentation_net(info["arch"])
        state = {
            k: (v.float() if v.is_floating_point() else v)
            for k, v in load_file(str(meta.with_suffix(".safetensors"))).items()
        }
        model.load_state_dict(state)
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot load segmenter {meta}: {exc}") from exc
    except CheckpointError as exc:  # from the arch check: add the file it came from
        raise CheckpointError(f"cannot load segmenter {meta}: {exc}") from exc
    return Segmenter(model.eval().requires_grad_(False), info)
