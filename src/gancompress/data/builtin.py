"""Built-in datasets in a cache folder: built on first use, atomically, then reused.

The cache lives in ``$GANCOMPRESS_CACHE/datasets`` (default ``~/.cache/gancompress/datasets``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .fonts import build_font_dataset
from .metadata import METADATA_NAME

BUILTIN_VERSION = 1  # bump when the builder's output changes, so stale caches are not reused


def cache_dir() -> Path:
    """``$GANCOMPRESS_CACHE`` or ``~/.cache/gancompress``."""
    env = os.environ.get("GANCOMPRESS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gancompress"


def ensure_builtin_dataset(
    name: str = "fonts", root: str | Path | None = None, size: int = 64, paired: bool = True
) -> Path:
    """The path of a built-in dataset, building it first if it is not in the cache yet.

    It is built in a temporary folder beside its final place and renamed, so an interrupted build
    never leaves a half dataset that a later call would trust.

    Example:
        >>> root = ensure_builtin_dataset("fonts", size=64)          # ~/.cache/gancompress/datasets/fonts-paired-64px-v1
        >>> build_dataset(root, "paired", "train")
    """
    if name != "fonts":
        raise DataError(
            f"{name!r} is not embedded; the embedded dataset is 'fonts'. Larger datasets are built with "
            f"'gancompress data prepare {name} --out DIR' (see 'gancompress data list')"
        )
    base = Path(root) if root is not None else cache_dir() / "datasets"
    final = base / f"fonts-{'paired' if paired else 'unpaired'}-{size}px-v{BUILTIN_VERSION}"
    if (final / METADATA_NAME).is_file():
        return final
    if final.exists():
        raise DataError(f"{final} exists but holds no {METADATA_NAME}: an incomplete dataset; delete it")
    from ..utils.files import atomic_directory

    # Built beside its final place and renamed (utils/files.py); another process that finished first
    # keeps its copy (replace=False). A full or read-only cache is a StorageError naming the folder.
    with atomic_directory(final, replace=False) as tmp:
        build_font_dataset(tmp, size=size, paired=paired)
    return final
