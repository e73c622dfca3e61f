"""Sample grids and sizes of prepared datasets, for docs/datasets.md.

Usage:
    python scripts/prepare_docs_grids.py DATASET_DIR [DATASET_DIR ...] [--out docs/img] [--json sizes.json]

For each folder (made by ``gancompress data prepare``) it writes ``dataset_NAME.png``: test samples
(paired: A | B; unpaired: a row of A over a row of B; semantic: coloured labels | photo) drawn at a
fixed seed, and prints the image counts and disk size.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from gancompress.data import list_images, load_rgb, read_metadata
from gancompress.data.images import load_label

# A qualitative palette for label maps (ocean, lake, then relief zones low → high).
PALETTE = np.array(
    [
        [20, 40, 120],
        [60, 140, 230],
        [50, 150, 60],
        [150, 180, 80],
        [190, 160, 100],
        [140, 100, 70],
        [240, 240, 240],
    ]
    + [[(37 * i) % 256, (91 * i) % 256, (157 * i) % 256] for i in range(7, 256)],
    np.uint8,
)


def _tile(img: Image.Image, size: int) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((size, size), Image.BICUBIC))


def grid(root: Path, cells: int, size: int, seed: int = 0) -> np.ndarray:
    info = read_metadata(root) or {}
    kind = info.get("kind", "paired")
    rng = random.Random(seed)
    gap = np.full((size, 4, 3), 255, np.uint8)
    if kind == "paired":
        files = rng.sample(list_images(root / "test"), min(cells, len(list_images(root / "test"))))
        pairs = []
        for f in files:
            ab = load_rgb(f)
            w, h = ab.size
            a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w // 2 * 2, h))
            pairs.append(np.concatenate([_tile(a, size), _tile(b, size), gap], 1))
        return np.concatenate(pairs, 1)
    if kind == "unpaired":
        rows = []
        for folder in ("testA", "testB"):
            files = rng.sample(list_images(root / folder), min(cells * 2, len(list_images(root / folder))))
            rows.append(np.concatenate([_tile(load_rgb(f), size) for f in files], 1))
        return np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]], 0)
    labels = list_images(root / "test_label")
    files = rng.sample(labels, min(cells, len(labels)))
    parts = []
    for f in files:
        label = np.asarray(load_label(f))
        photo = next((root / "test_img").glob(f"{f.stem}.*"))
        coloured = Image.fromarray(PALETTE[label])
        parts.append(np.concatenate([_tile(coloured, size), _tile(load_rgb(photo), size), gap], 1))
    return np.concatenate(parts, 1)


def disk_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--cells", type=int, default=6, help="samples per grid")
    parser.add_argument("--size", type=int, default=96, help="pixels per image in the grid")
    parser.add_argument("--json", type=Path, help="also write the sizes here")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for root in args.roots:
        info = read_metadata(root) or {}
        name = info.get("name", root.name)
        path = args.out / f"dataset_{name}.png"
        Image.fromarray(grid(root, args.cells, args.size)).save(path, optimize=True)
        sizes[name] = {
            "kind": info.get("kind"),
            "image_size": info.get("size"),
            "counts": info.get("counts"),
            "disk_mb": round(disk_size(root) / 1e6, 1),
            "grid": str(path),
            "grid_kb": round(path.stat().st_size / 1024),
        }
        print(json.dumps({name: sizes[name]}))
    if args.json:
        args.json.write_text(json.dumps(sizes, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
