"""Fashion-MNIST (Debian's dataset-fashion-mnist) as an unpaired CycleGAN dataset: one class ↔ another."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import DataError
from ..metadata import write_metadata

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)  # fmt: skip
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}  # fmt: skip


def _read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if arr.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape}, found {arr.size} bytes")
    return arr.reshape(shape)


def load_fashion_mnist(split: str, root: str | Path = DEBIAN_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,)) of the train (60k) or test (10k) split."""
    root = Path(root)
    images, labels = (root / f for f in FILES[split])
    if not images.is_file():
        raise DataError(
            f"Fashion-MNIST not found at {images}: install it with 'apt-get install dataset-fashion-mnist'"
        )
    return _read_idx(images), _read_idx(labels)


def build_fashion(
    out: str | Path,
    *,
    domain_a: str = "sneaker",
    domain_b: str = "ankle-boot",
    size: int = 32,
    invert: bool = True,
    root: str | Path = DEBIAN_DIR,
) -> Path:
    """trainA/trainB (6000 each) and testA/testB (1000 each) of two Fashion-MNIST classes.

    The 28-px images are padded to 32 (a size every generator's strides divide) and, with ``invert``,
    drawn dark on white like the other datasets here; ``size`` > 32 resizes after padding.
    """
    for d in (domain_a, domain_b):
        if d not in FASHION_CLASSES:
            raise DataError(f"unknown Fashion-MNIST class {d!r}; classes: {', '.join(FASHION_CLASSES)}")
    out = Path(out)
    counts = {}
    for split in ("train", "test"):
        images, labels = load_fashion_mnist(split, root)
        for dom, cls in (("A", domain_a), ("B", domain_b)):
            folder = out / f"{split}{dom}"
            folder.mkdir(parents=True, exist_ok=True)
            idx = np.flatnonzero(labels == FASHION_CLASSES.index(cls))
            for i in idx:
                arr = np.pad(images[i], 2)
                if invert:
                    arr = 255 - arr
                img = Image.fromarray(arr, "L")
                if size != 32:
                    img = img.resize((size, size), Image.BICUBIC)
                img.convert("RGB").save(folder / f"{split}-{i:05d}.png", compress_level=3)
            counts[f"{split}{dom}"] = int(idx.size)
    write_metadata(
        out,
        {
            "name": "fashion",
            "kind": "unpaired",
            "task": f"Fashion-MNIST {domain_a} <-> {domain_b}",
            "size": size,
            "inverted": invert,
            "domains": {"A": domain_a, "B": domain_b},
            "target_domain_class": domain_b,
            "counts": counts,
            "source": "Debian package dataset-fashion-mnist (Zalando Research)",
            "licence": "MIT",
        },
    )
    return out
