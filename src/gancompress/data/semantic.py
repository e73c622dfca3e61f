"""Semantic (GauGAN) datasets: label maps, optional instance maps, and the photos they describe.

Layout: ``root/<split>_label/NAME.png`` (class ids, single channel), ``root/<split>_img/NAME.jpg|png``
and optionally ``root/<split>_inst/NAME.png`` (instance ids). Files match by name (stem).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from . import transforms as T
from .images import OnError, SkipPolicy, list_images, load_label, load_rgb
from .paired import _Retrying


def one_hot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """An HxW integer map as a float (num_classes, H, W) one-hot tensor."""
    return torch.nn.functional.one_hot(label.long(), num_classes).permute(2, 0, 1).float()


def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """1 where a pixel's instance id differs from a 4-neighbour's (GauGAN's ``get_edges``), as (1, H, W)."""
    edge = torch.zeros_like(inst, dtype=torch.bool)
    horiz = inst[:, 1:] != inst[:, :-1]
    vert = inst[1:, :] != inst[:-1, :]
    edge[:, 1:] |= horiz
    edge[:, :-1] |= horiz
    edge[1:, :] |= vert
    edge[:-1, :] |= vert
    return edge.float().unsqueeze(0)


class SemanticDataset(_Retrying):
    """Returns ``{"label": (C[+1], H, W) one-hot (+ instance edge channel), "image": (3, H, W), "path"}``.

    ``num_classes`` counts the ids in the label maps; with ``dontcare_label`` id 255 becomes one extra
    class (GauGAN's ``contain_dontcare_label``). ``use_instance=None`` adds the edge channel exactly
    when an instance folder exists.

    Example:
        >>> ds = SemanticDataset("datasets/labels2sat", "train", num_classes=8)
        >>> ds[0]["label"].shape   # (9, 256, 256): 8 classes + instance edges
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: T.TransformConfig | None = None,
        *,
        num_classes: int,
        dontcare_label: bool = False,
        use_instance: bool | None = None,
        on_error: OnError = "raise",
    ) -> None:
        if num_classes < 1:
            raise DataError(f"num_classes must be positive, got {num_classes}")
        self.root = Path(root)
        labels = list_images(self.root / f"{split}_label", what=f"label maps ({split} split)")
        images = {p.stem: p for p in list_images(self.root / f"{split}_img", what=f"photos ({split} split)")}
        inst_dir = self.root / f"{split}_inst"
        if use_instance is None:
            use_instance = inst_dir.is_dir()
        instances = {}
        if use_instance:
            instances = {p.stem: p for p in list_images(inst_dir, what=f"instance maps ({split} split)")}
        missing = [
            p.name for p in labels if p.stem not in images or (use_instance and p.stem not in instances)
        ]
        if missing:
            raise DataError(
                f"{len(missing)} label maps under {self.root / (split + '_label')} have no matching photo"
                f"{' or instance map' if use_instance else ''} (e.g. {missing[:3]})"
            )
        self.items = [(p, images[p.stem], instances.get(p.stem)) for p in labels]
        self.num_classes = num_classes
        self.dontcare_label = dontcare_label
        self.use_instance = bool(use_instance)
        self.transform = transform or T.TransformConfig()
        self.policy = SkipPolicy(on_error)

    @property
    def label_channels(self) -> int:
        """Channels of ``label``: the generator's input width (SPADE's ``semantic_nc``)."""
        return self.num_classes + int(self.dontcare_label) + int(self.use_instance)

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, index: int) -> dict[str, Any]:
        label_path, image_path, inst_path = self.items[index]
        try:
            label = load_label(label_path)
            image = load_rgb(image_path)
            inst = load_label(inst_path) if inst_path else None
        except DataError as exc:
            exc.path = label_path
            raise
        if image.size != label.size:
            image = image.resize(label.size, T.Image.BICUBIC)
        params = T.sample_params(self.transform, label.size, random)
        label_t = torch.from_numpy(
            np.array(T.apply(label, self.transform, params, nearest=True), dtype=np.int64)
        )
        classes = self.num_classes
        if self.dontcare_label:
            label_t = torch.where(label_t == 255, torch.full_like(label_t, classes), label_t)
            classes += 1
        if int(label_t.max()) >= classes or int(label_t.min()) < 0:
            err = DataError(
                f"label map {label_path} holds id {int(label_t.max())}, outside 0..{classes - 1} "
                f"(num_classes={self.num_classes}, dontcare_label={self.dontcare_label})"
            )
            err.path = label_path
            raise err
        parts = [one_hot(label_t, classes)]
        if inst is not None:
            inst_t = torch.from_numpy(
                np.array(T.apply(inst, self.transform, params, nearest=True), dtype=np.int64)
            )
            parts.append(instance_edges(inst_t))
        image_t = T.to_tensor(T.apply(image, self.transform, params, path=image_path))
        return {"label": torch.cat(parts, 0), "image": image_t, "path": str(label_path)}
