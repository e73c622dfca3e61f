"""Paired (pix2pix) datasets: A|B side by side in one image, or A/ and B/ folders with matching names."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from . import transforms as T
from .images import OnError, SkipPolicy, list_images, load_rgb

DIRECTIONS = ("AtoB", "BtoA")


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise DataError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")


class _Retrying(Dataset):
    """Index → sample with the unreadable-file policy: under ``skip`` move on to the next index."""

    def __len__(self) -> int:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def _load(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        for step in range(n):
            try:
                return self._load((index + step) % n)
            except DataError as exc:
                self.policy.failed(exc, getattr(exc, "path", ""))
        raise DataError(f"every image of {self.root} is unreadable")


class AlignedDataset(_Retrying):
    """``root/<split>/*.png`` where each image holds A (left half) and B (right half), as pix2pix's datasets.

    Returns ``{"A", "B", "A_path", "B_path"}`` with both halves under the same random crop and flip.

    Example:
        >>> ds = AlignedDataset("datasets/facades", "train", T.TransformConfig(load_size=286, crop_size=256))
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: T.TransformConfig | None = None,
        *,
        direction: str = "AtoB",
        on_error: OnError = "raise",
    ) -> None:
        check_direction(direction)
        self.root = Path(root)
        self.folder = self.root / split
        self.paths = list_images(self.folder, what=f"paired A|B images ({split} split)")
        self.transform = transform or T.TransformConfig()
        self.direction = direction
        self.policy = SkipPolicy(on_error)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        ab = load_rgb(path)  # its DataError carries the path, for the skip policy
        w, h = ab.size
        if w < 2:
            err = DataError(f"paired image {path} is {w} px wide; expected A and B side by side")
            err.path = path
            raise err
        half = w // 2
        a, b = ab.crop((0, 0, half, h)), ab.crop((half, 0, 2 * half, h))
        return _pair(a, b, str(path), str(path), self.transform, self.direction)


class PairedFolderDataset(_Retrying):
    """Separate A and B folders whose files match by name (stem): ``root/<split>/A`` + ``root/<split>/B``,
    or ``root/A/<split>`` + ``root/B/<split>`` (the layout pix2pix's combine script reads).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: T.TransformConfig | None = None,
        *,
        direction: str = "AtoB",
        on_error: OnError = "raise",
    ) -> None:
        check_direction(direction)
        self.root = Path(root)
        dir_a, dir_b = paired_folders(self.root, split)
        files_a = {p.stem: p for p in list_images(dir_a, what=f"paired A images ({split} split)")}
        files_b = {p.stem: p for p in list_images(dir_b, what=f"paired B images ({split} split)")}
        only_a, only_b = sorted(files_a.keys() - files_b.keys()), sorted(files_b.keys() - files_a.keys())
        if only_a or only_b:
            raise DataError(
                f"A and B folders {dir_a} and {dir_b} do not match by name: "
                f"{len(only_a)} only in A (e.g. {only_a[:3]}), {len(only_b)} only in B (e.g. {only_b[:3]})"
            )
        self.pairs = [(files_a[k], files_b[k]) for k in sorted(files_a)]
        self.transform = transform or T.TransformConfig()
        self.direction = direction
        self.policy = SkipPolicy(on_error)

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> dict[str, Any]:
        pa, pb = self.pairs[index]
        return _pair(load_rgb(pa), load_rgb(pb), str(pa), str(pb), self.transform, self.direction)


def paired_folders(root: Path, split: str) -> tuple[Path, Path]:
    """The (A, B) folders of a separate-folder paired dataset; an error listing both layouts if neither exists."""
    for a, b in ((root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)):
        if a.is_dir() or b.is_dir():
            return a, b
    raise DataError(
        f"no paired folders for split {split!r} under {root}: expected {root / split / 'A'} and "
        f"{root / split / 'B'}, or {root / 'A' / split} and {root / 'B' / split}"
    )


def _pair(a, b, a_path: str, b_path: str, cfg: T.TransformConfig, direction: str) -> dict[str, Any]:
    if a.size != b.size:
        # Mixed sizes inside a pair: B follows A so the two stay pixel-aligned.
        b = b.resize(a.size, T.Image.BICUBIC)
    params = T.sample_params(cfg, a.size, random)
    ta = T.to_tensor(T.apply(a, cfg, params, path=a_path))
    tb = T.to_tensor(T.apply(b, cfg, params, path=b_path))
    if direction == "BtoA":
        ta, tb, a_path, b_path = tb, ta, b_path, a_path
    return {"A": ta, "B": tb, "A_path": a_path, "B_path": b_path}
