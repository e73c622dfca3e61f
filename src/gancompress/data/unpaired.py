"""Unpaired (CycleGAN) datasets: ``root/trainA``, ``root/trainB``, ``root/testA``, ``root/testB``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from . import transforms as T
from .images import OnError, SkipPolicy, list_images, load_rgb
from .paired import _Retrying, check_direction


class UnpairedDataset(_Retrying):
    """Images of domain A and domain B with no correspondence; each gets its own random crop and flip.

    The length is the larger domain; A is indexed in order, B at random (``serial=True``: in order
    too, which gives aligned pairs when the two folders hold matching names, as the built-in test sets do).

    Example:
        >>> ds = UnpairedDataset("datasets/horse2zebra", "train", T.TransformConfig())
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: T.TransformConfig | None = None,
        *,
        direction: str = "AtoB",
        serial: bool = False,
        on_error: OnError = "raise",
    ) -> None:
        check_direction(direction)
        self.root = Path(root)
        a, b = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.dir_a, self.dir_b = self.root / f"{split}{a}", self.root / f"{split}{b}"
        self.paths_a = list_images(self.dir_a, what=f"unpaired domain {a} ({split} split)")
        self.paths_b = list_images(self.dir_b, what=f"unpaired domain {b} ({split} split)")
        self.transform = transform or T.TransformConfig()
        self.serial = serial
        self.policy = SkipPolicy(on_error)

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def _load(self, index: int) -> dict[str, Any]:
        pa = self.paths_a[index % len(self.paths_a)]
        # The global ``random`` is reseeded per DataLoader worker, so workers draw different B partners.
        j = index % len(self.paths_b) if self.serial else random.randrange(len(self.paths_b))
        pb = self.paths_b[j]
        out = {}
        for key, p in (("A", pa), ("B", pb)):
            img = load_rgb(p)
            params = T.sample_params(self.transform, img.size, random)
            out[key] = T.to_tensor(T.apply(img, self.transform, params, path=p))
        return {"A": out["A"], "B": out["B"], "A_path": str(pa), "B_path": str(pb)}
