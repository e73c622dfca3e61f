"""``gancompress_dataset.json``: what a built dataset is, written by every builder beside its images.

Readers use it to pick the dataset class, the number of classes, and the matching domain extractor;
folders a user made by hand simply have none, and the layout is detected from the folder names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..utils.files import atomic_write_json

METADATA_NAME = "gancompress_dataset.json"
METADATA_VERSION = 1


def write_metadata(root: str | Path, info: dict[str, Any]) -> Path:
    return atomic_write_json(Path(root) / METADATA_NAME, {"format_version": METADATA_VERSION, **info})


def read_metadata(root: str | Path) -> dict[str, Any] | None:
    """The dataset's metadata, or None for a folder without it; a malformed file is an error naming it."""
    path = Path(root) / METADATA_NAME
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise DataError(f"cannot read dataset metadata {path}: {exc}") from exc
    if not isinstance(info, dict) or "kind" not in info:
        raise DataError(f"dataset metadata {path} has no 'kind' field")
    return info
