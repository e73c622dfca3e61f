"""``build_dataset``: one entry point from a folder (and a kind, or none) to the right Dataset class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from .images import OnError
from .metadata import read_metadata
from .paired import AlignedDataset, PairedFolderDataset
from .semantic import SemanticDataset
from .transforms import TransformConfig
from .unpaired import UnpairedDataset

KINDS = ("auto", "paired", "aligned", "paired_folders", "unpaired", "semantic")


def detect_kind(root: str | Path, split: str = "train") -> str:
    """The layout of ``root`` from its metadata file or its folder names: aligned, paired_folders, unpaired, semantic."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    info = read_metadata(root)
    if info is not None:
        kind = info["kind"]
        return "paired" if kind == "paired" else kind
    if (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir():
        return "unpaired"
    if (root / f"{split}_label").is_dir():
        return "semantic"
    if (root / split / "A").is_dir() or (root / "A" / split).is_dir():
        return "paired_folders"
    if (root / split).is_dir():
        return "aligned"
    raise DataError(
        f"cannot tell the layout of {root} for split {split!r}: expected {split}/ (A|B images), "
        f"{split}/A + {split}/B, {split}A + {split}B, or {split}_label + {split}_img"
    )


def build_dataset(
    root: str | Path,
    kind: str = "auto",
    split: str = "train",
    transform: TransformConfig | None = None,
    *,
    direction: str = "AtoB",
    on_error: OnError = "raise",
    **options: Any,
) -> Dataset:
    """The Dataset for ``root/split`` of the given layout ("auto" detects it).

    ``options`` go to the class: ``serial`` (unpaired), ``num_classes``, ``dontcare_label``,
    ``use_instance`` (semantic; ``num_classes`` defaults to the one in the dataset's metadata).

    Example:
        >>> ds = build_dataset(ensure_builtin_dataset("fonts"), "paired", "test", TransformConfig.for_eval(64))
    """
    if kind not in KINDS:
        raise DataError(f"dataset kind {kind!r} is not one of {', '.join(KINDS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    if kind == "auto":
        kind = detect_kind(root, split)
    if kind == "paired":
        kind = "paired_folders" if _has_paired_folders(root, split) else "aligned"
    if kind == "aligned":
        return AlignedDataset(root, split, transform, direction=direction, on_error=on_error, **options)
    if kind == "paired_folders":
        return PairedFolderDataset(root, split, transform, direction=direction, on_error=on_error, **options)
    if kind == "unpaired":
        return UnpairedDataset(root, split, transform, direction=direction, on_error=on_error, **options)
    info = read_metadata(root) or {}
    options.setdefault("num_classes", info.get("num_classes"))
    options.setdefault("dontcare_label", bool(info.get("dontcare_label", False)))
    if options["num_classes"] is None:
        raise DataError(
            f"semantic dataset {root}: pass num_classes (no {root}/gancompress_dataset.json to read it from)"
        )
    if direction != "AtoB":
        raise DataError("semantic datasets go from label maps to photos only (direction='AtoB')")
    return SemanticDataset(root, split, transform, on_error=on_error, **options)


def _has_paired_folders(root: Path, split: str) -> bool:
    return (root / split / "A").is_dir() or (root / "A" / split).is_dir()
