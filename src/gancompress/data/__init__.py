"""Datasets: the layouts users already have (paired, unpaired, semantic), shared transforms, built-in data.

Example:
    >>> from gancompress.data import ensure_builtin_dataset, build_dataset, TransformConfig
    >>> root = ensure_builtin_dataset("fonts")
    >>> train = build_dataset(root, "paired", "train", TransformConfig(load_size=72, crop_size=64))
    >>> train[0]["A"].shape      # torch.Size([3, 64, 64]), values in [-1, 1]
"""

from .builtin import cache_dir, ensure_builtin_dataset
from .factory import build_dataset, detect_kind
from .fonts import build_font_dataset
from .images import list_images, load_rgb
from .metadata import read_metadata
from .paired import AlignedDataset, PairedFolderDataset
from .prepare import PREPARERS, prepare_dataset
from .semantic import SemanticDataset
from .transforms import TransformConfig
from .unpaired import UnpairedDataset

__all__ = [
    "PREPARERS",
    "AlignedDataset",
    "PairedFolderDataset",
    "SemanticDataset",
    "TransformConfig",
    "UnpairedDataset",
    "build_dataset",
    "build_font_dataset",
    "cache_dir",
    "detect_kind",
    "ensure_builtin_dataset",
    "list_images",
    "load_rgb",
    "prepare_dataset",
    "read_metadata",
]
