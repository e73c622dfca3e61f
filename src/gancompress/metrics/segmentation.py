"""mIoU of a segmentation model on generated images, against the label maps they were generated from."""

from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
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
