"""``photos``: a paired photo-to-photo dataset from real photographs that packages ship.

Sources (default): the colour photographs among OpenCV's sample images (Debian's ``opencv-doc``:
``/usr/share/doc/opencv-doc/examples/data`` and the scene photos of ``examples/text``) and
matplotlib's ``grace_hopper.jpg``; or any folders of photos given as ``source``. Every photo is cut
into ``crops_per_photo`` crops of ``size`` px (one view of the whole photo, the others at 1.5× scale),
and the split is **by source**: all crops of a photo — and of OpenCV's photos of one scene, such as
the stereo pair ``aloeL``/``aloeR`` — go to one split, so no test scene is seen in training. Photos
given as ``source`` are each their own scene (file names must then be unique).

Tasks (A → B, in the paired ``A|B`` layout):

* ``tone``: a fixed photographic look, written with numpy/Pillow only: unsharp mask, an S-shaped
  contrast curve, a warm white balance and 25 % more saturation. Local and deterministic, so a
  generator can learn it exactly; copying the input is a real but beatable baseline.
* ``colorize``: the grey (luma) photo → the colour photo.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ...errors import DataError
from ..metadata import write_metadata

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples")
#: the colour photographs among OpenCV's sample images (the rest are drawings, logos, renders,
#: calibration boards, grey frames, a painting, or manipulated copies of another sample)
OPENCV_PHOTOS = (
    "data/HappyFish.jpg", "data/aero1.jpg", "data/aero3.jpg", "data/aloeL.jpg", "data/aloeR.jpg",
    "data/apple.jpg", "data/baboon.jpg", "data/board.jpg", "data/building.jpg", "data/butterfly.jpg",
    "data/chicky_512.png", "data/ela_original.jpg", "data/fruits.jpg", "data/graf1.png", "data/graf3.png",
    "data/home.jpg", "data/left.jpg", "data/right.jpg", "data/leuvenA.jpg", "data/leuvenB.jpg",
    "data/messi5.jpg", "data/orange.jpg", "data/rubberwhale1.png", "data/rubberwhale2.png",
    "data/smarties.png", "data/squirrel_cls.jpg", "data/stuff.jpg",
    "text/scenetext01.jpg", "text/scenetext02.jpg", "text/scenetext03.jpg", "text/scenetext04.jpg",
    "text/scenetext05.jpg", "text/scenetext06.jpg",
)  # fmt: skip
TASKS = ("tone", "colorize")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
LICENCE = (
    "OpenCV sample images: Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright); "
    "grace_hopper.jpg: public domain (U.S. Navy photograph, shipped by matplotlib)"
)


def default_sources() -> list[Path]:
    """The photos this machine has: OpenCV's (if opencv-doc is installed) and matplotlib's sample."""
    import matplotlib

    found = [OPENCV_DATA / name for name in OPENCV_PHOTOS if (OPENCV_DATA / name).is_file()]
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        found.append(hopper)
    return found


#: OpenCV samples that show one scene twice (stereo pairs, two views): one scene, one split
SAME_SCENE = {
    "aloeR": "aloeL", "graf3": "graf1", "right": "left", "leuvenB": "leuvenA", "rubberwhale2": "rubberwhale1",
}  # fmt: skip


def scene_of(path: Path) -> str:
    """The scene a photo shows: its file name, except the known pairs of views of one scene."""
    return SAME_SCENE.get(path.stem, path.stem)


def _collect(source: str | Path | Iterable[str | Path] | None) -> list[Path]:
    if source is None:
        files = default_sources()
        if len(files) < 4:
            raise DataError(
                "too few photos here: install Debian's opencv-doc (apt-get install opencv-doc) "
                "or pass --set source=FOLDER with your own photos"
            )
        return files
    roots = [source] if isinstance(source, str | Path) else list(source)
    files: list[Path] = []
    for root in map(Path, roots):
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise DataError(f"photo source {root}: no such file or folder")
    if not files:
        raise DataError(f"photo source {source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def tone_filter(rgb: np.ndarray) -> np.ndarray:
    """The ``tone`` task's look on a uint8 H×W×3 photo: sharpen, S-curve, warm balance, saturation."""
    sharp = np.asarray(
        Image.fromarray(rgb).filter(ImageFilter.UnsharpMask(radius=2, percent=60, threshold=2))
    )
    x = sharp.astype(np.float32) / 255.0
    x = 0.6 * x + 0.4 * (x * x * (3 - 2 * x))  # a gentle S-curve (smoothstep blend)
    x = x * np.array([1.06, 1.0, 0.9], dtype=np.float32)  # warmer white balance
    luma = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    x = luma + 1.25 * (x - luma)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _pair(crop: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "tone":
        return crop, tone_filter(crop)
    grey = np.asarray(Image.fromarray(crop).convert("L"))
    return np.repeat(grey[..., None], 3, axis=2), crop


def _crops(img: Image.Image, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One view of the whole photo (short side = size, centre crop), then crops of it at 1.5× scale."""

    def scaled(short: int) -> Image.Image:
        w, h = img.size
        k = short / min(w, h)
        return img.resize((max(short, round(w * k)), max(short, round(h * k))), Image.Resampling.LANCZOS)

    whole = np.asarray(scaled(size))
    h, w = whole.shape[:2]
    out = [whole[(h - size) // 2 : (h - size) // 2 + size, (w - size) // 2 : (w - size) // 2 + size]]
    if count > 1:
        big = np.asarray(scaled(round(size * 1.5)))
        h, w = big.shape[:2]
        for _ in range(count - 1):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            out.append(big[y : y + size, x : x + size])
    return out


def build_photos(
    out: str | Path,
    *,
    size: int = 256,
    task: str = "tone",
    source: str | list[str] | None = None,
    crops_per_photo: int = 4,
    test_fraction: float = 0.2,
    min_side: int = 192,
    min_colour: float = 0.03,
    seed: int = 0,
) -> Path:
    """Paired real photos (A|B) for ``task`` (``tone`` or ``colorize``), split by source scene.

    Photos smaller than ``min_side`` or with a mean colourfulness (max − min channel) below
    ``min_colour`` (grey frames) are skipped. Example:
        >>> build_photos("runs/data/photos", size=256, task="tone")
    """
    if task not in TASKS:
        raise DataError(f"photos: task must be one of {', '.join(TASKS)}, got {task!r}")
    if size < 16 or crops_per_photo < 1 or not 0 < test_fraction < 1:
        raise DataError("photos: size >= 16, crops_per_photo >= 1 and 0 < test_fraction < 1 are needed")
    out = Path(out)
    groups: dict[str, list[Image.Image]] = {}
    used: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for path in _collect(source):
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (OSError, ValueError) as exc:
            skipped[str(path)] = f"unreadable ({exc})"
            continue
        if min(img.size) < min_side:
            skipped[str(path)] = f"smaller than {min_side} px"
            continue
        small = np.asarray(img.resize((64, 64))).astype(np.float32)
        if (small.max(2) - small.min(2)).mean() / 255 < min_colour:
            skipped[str(path)] = "grey"
            continue
        group = scene_of(path)
        groups.setdefault(group, []).append(img)
        used.setdefault(group, []).append(str(path))
    if len(groups) < 2:
        raise DataError(
            f"photos: {len(groups)} usable scene(s) found; a train/test split by scene needs at least 2 "
            f"(skipped: {len(skipped)})"
        )
    # deterministic split by scene name, with at least one scene on each side
    order = sorted(groups, key=lambda g: zlib.crc32(f"{seed}:{g}".encode()))
    n_test = min(len(order) - 1, max(1, round(test_fraction * len(order))))
    split_of = {g: ("test" if i < n_test else "train") for i, g in enumerate(order)}
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "test": 0}
    for group in sorted(groups):
        split = split_of[group]
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for j, img in enumerate(groups[group]):
            for k, crop in enumerate(_crops(img, size, crops_per_photo, rng)):
                a, b = _pair(np.ascontiguousarray(crop), task)
                Image.fromarray(np.concatenate([a, b], 1)).save(
                    folder / f"{group}_{j}_{k}.jpg", quality=95, subsampling=0
                )  # 4:4:4: no chroma bleeding across the A|B seam
                counts[split] += 1
    write_metadata(
        out,
        {
            "name": "photos",
            "kind": "paired",
            "size": size,
            "task": task,
            "counts": counts,
            "split": "by source scene (no scene in both splits)",
            "scenes": {g: {"split": split_of[g], "files": used[g]} for g in sorted(groups)},
            "skipped": skipped,
            "domains": {
                "A": "photo" if task == "tone" else "grey photo",
                "B": "photo with the tone look" if task == "tone" else "colour photo",
            },
            "licence": LICENCE if source is None else "the licences of the given photos",
        },
    )
    return out
