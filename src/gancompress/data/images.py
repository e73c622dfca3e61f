"""Reading image files: listing folders, converting every mode to RGB, and unreadable-file policy.

Users' folders hold whatever their tools wrote: grayscale scans, palette PNGs, RGBA exports, 16-bit
maps, float TIFFs, camera JPEGs with an EXIF orientation. Everything becomes 8-bit RGB here so the
datasets never see a mode they do not expect:

* integer images are scaled by their type's range (16-bit: 0..65535, 32-bit: the TIFF's sample
  format), float images are read as 0..1 (values outside are clipped; NaN or inf is an error naming
  the file), never by the image's own maximum, so a dark image stays dark;
* the EXIF orientation is applied, as image viewers do;
* an image with more pixels than ``max_image_pixels()`` (PIL's decompression-bomb limit, or
  ``GANCOMPRESS_MAX_IMAGE_PIXELS``) is refused before it is decoded, naming the file; datasets built
  with ``on_error="skip"`` skip it like any unreadable file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif")
OnError = Literal["raise", "skip"]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: str | Path, *, what: str = "images") -> list[Path]:
    """Sorted image files directly inside ``folder``; a missing folder or one without images is an error.

    Example:
        >>> list_images("datasets/facades/train", what="paired A|B images")
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what}: folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise DataError(f"{what}: folder {folder} contains no images ({', '.join(IMG_EXTENSIONS)})")
    return files


# Pillow's own bomb limit as shipped: the default even where other code has switched Pillow's guard off
_PIL_PIXEL_LIMIT = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def max_image_pixels() -> int:
    """The largest image (width × height) decoded: ``GANCOMPRESS_MAX_IMAGE_PIXELS``, else PIL's bomb limit."""
    env = os.environ.get("GANCOMPRESS_MAX_IMAGE_PIXELS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise DataError(f"GANCOMPRESS_MAX_IMAGE_PIXELS must be an integer, got {env!r}") from None
    return int(Image.MAX_IMAGE_PIXELS or _PIL_PIXEL_LIMIT)


def _integer_range(img: Image.Image) -> float:
    """The largest value of an integer image's type: its TIFF bits and sample format, else 16 bits."""
    if img.mode.startswith("I;16"):
        return 65535.0
    tags = getattr(img, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)  # BitsPerSample
        bits = int(bits[0] if isinstance(bits, tuple) else bits) if bits else 32
        signed = (tags.get(339) or (1,)) in (2, (2,))  # SampleFormat 2: signed integers
        return float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)
    return 65535.0  # PNG and PNM keep at most 16 bits per sample in mode I


def _to_rgb(img: Image.Image, path: Path, integer_range: float) -> Image.Image:
    # Transparent pixels are composited on white: glyphs, icons and maps exported with alpha are drawn
    # on a light page, and their hidden RGB under alpha=0 is often arbitrary (black) garbage.
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            if not np.isfinite(arr).all():
                raise _unreadable(f"image {path} holds NaN or infinite pixels", path)
            hi = 1.0  # float images are 0..1
        else:
            hi = integer_range
        img = Image.fromarray(np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGBa"):
        rgba = img.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(page, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def _open(path: Path, what: str) -> Image.Image:
    """Open ``path`` and check its size before anything is decoded (a 20000×20000 PNG is a few KB)."""
    limit = max_image_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit below decides
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = img.size
    if w * h > limit:
        img.close()
        raise _unreadable(
            f"{what} {path} is {w}x{h} ({w * h:,} pixels), more than the {limit:,} decoded at most "
            "(a decompression bomb, or an image to resize first; GANCOMPRESS_MAX_IMAGE_PIXELS raises the limit)",
            path,
        )
    return img


def _unreadable(message: str, path: Path) -> DataError:
    """A DataError that carries the file it is about (``.path``): the datasets' skip policy reads it."""
    err = DataError(message)
    err.path = path  # type: ignore[attr-defined]
    return err


def load_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image; a file that cannot be decoded raises DataError naming it."""
    path = Path(path)
    try:
        with _open(path, "image") as img:
            img.load()
            # the range is read before exif_transpose, whose copy drops the TIFF tags
            return _to_rgb(ImageOps.exif_transpose(img), path, _integer_range(img))
    except FileNotFoundError:
        raise _unreadable(f"image {path} does not exist", path) from None
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(f"cannot read image {path}: {exc}", path) from exc


def load_label(path: str | Path) -> Image.Image:
    """Decode a label or instance map as integers (mode ``L`` or ``I``) without any colour conversion."""
    path = Path(path)
    try:
        with _open(path, "label map") as opened:
            opened.load()
            img = ImageOps.exif_transpose(opened)  # as load_rgb, so a map stays aligned with its photo
            if img.mode in ("L", "I", "P"):
                return img.convert("L") if img.mode == "P" else img.copy()
            if img.mode.startswith("I;16"):
                return Image.fromarray(np.asarray(img, dtype=np.int32), "I")
            if img.mode in ("RGB", "RGBA"):
                # A label map saved as RGB with equal channels: keep one channel; coloured maps are not ids.
                arr = np.asarray(img.convert("RGB"))
                if not (
                    np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
                ):
                    raise _unreadable(
                        f"label map {path} is a colour image; save class ids as a single-channel (L or P) PNG",
                        path,
                    )
                return Image.fromarray(arr[..., 0], "L")
            raise _unreadable(f"label map {path} has unsupported mode {img.mode}", path)
    except FileNotFoundError:
        raise _unreadable(f"label map {path} does not exist", path) from None
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(f"cannot read label map {path}: {exc}", path) from exc


class SkipPolicy:
    """Remembers unreadable files and warns once for each, for datasets built with ``on_error="skip"``."""

    def __init__(self, on_error: OnError) -> None:
        if on_error not in ("raise", "skip"):
            raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.bad: set[str] = set()

    def failed(self, exc: DataError, path: Path | str) -> None:
        """Re-raise under ``raise``; under ``skip`` warn (once per file) and let the caller move on."""
        if self.on_error == "raise":
            raise exc
        if str(path) not in self.bad:
            self.bad.add(str(path))
            warnings.warn(f"skipping unreadable image: {exc}", RuntimeWarning, stacklevel=3)
