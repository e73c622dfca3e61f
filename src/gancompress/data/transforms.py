"""Shared image transforms: one random resize/crop/flip drawn once and applied to every image of a sample.

Paired data is only paired if both halves move together, so the random parameters are sampled
first (``sample_params``) and then applied to A, B, label and instance maps alike (``apply``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, DataError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "resize", "none")


@dataclass(frozen=True)
class TransformConfig:
    """How images are brought to the network's input size (pytorch-CycleGAN-and-pix2pix semantics).

    - ``resize_and_crop``: resize to ``load_size`` square, random ``crop_size`` crop (train default).
    - ``crop``: random ``crop_size`` crop of the image as it is.
    - ``scale_width`` / ``scale_width_and_crop``: width to ``load_size`` keeping the aspect ratio, then crop.
    - ``resize``: resize to ``load_size`` square, nothing else (the evaluation default).
    - ``none``: keep the size, rounded down to a multiple of ``multiple_of`` so the generator's strides fit.

    Example:
        >>> TransformConfig(load_size=72, crop_size=64)            # training on 64-px glyphs
        >>> TransformConfig.for_eval(64)                             # deterministic, no flip
    """

    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    multiple_of: int = 4

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS_MODES:
            raise ConfigError(f"preprocess: {self.preprocess!r} is not one of {', '.join(PREPROCESS_MODES)}")
        if self.load_size < 1 or self.crop_size < 1 or self.multiple_of < 1:
            raise ConfigError("load_size, crop_size and multiple_of must be positive")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ConfigError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")

    @classmethod
    def for_eval(cls, size: int) -> TransformConfig:
        """Resize to ``size`` square, no crop, no flip: what metrics and tests should see."""
        return cls(load_size=size, crop_size=size, preprocess="resize", flip=False)

    @property
    def random(self) -> bool:
        return self.flip or self.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop")


@dataclass(frozen=True)
class TransformParams:
    """One draw of the random parameters: the crop's top-left corner and whether to flip."""

    crop_x: int = 0
    crop_y: int = 0
    flip: bool = False


def _resized_size(cfg: TransformConfig, size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    if cfg.preprocess in ("resize_and_crop", "resize"):
        return cfg.load_size, cfg.load_size
    if cfg.preprocess in ("scale_width", "scale_width_and_crop"):
        if w == cfg.load_size and h >= cfg.crop_size:
            return w, h
        return cfg.load_size, max(cfg.crop_size, round(h * cfg.load_size / w))
    return w, h


def sample_params(
    cfg: TransformConfig, size: tuple[int, int], rng: random.Random | None = None
) -> TransformParams:
    """Draw crop position and flip for an image of ``size`` (width, height) before any resizing."""
    rng = rng or random
    w, h = _resized_size(cfg, size)
    x = y = 0
    if cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        x = rng.randint(0, max(0, w - cfg.crop_size))
        y = rng.randint(0, max(0, h - cfg.crop_size))
    return TransformParams(crop_x=x, crop_y=y, flip=cfg.flip and rng.random() > 0.5)


def apply(
    img: Image.Image,
    cfg: TransformConfig,
    params: TransformParams,
    *,
    nearest: bool = False,
    path: object = "",
) -> Image.Image:
    """Resize/crop/flip ``img`` with already drawn ``params``; ``nearest=True`` for label and instance maps."""
    method = Image.NEAREST if nearest else Image.BICUBIC
    new_size = _resized_size(cfg, img.size)
    if new_size != img.size:
        img = img.resize(new_size, method)
    if cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        w, h = img.size
        if w < cfg.crop_size or h < cfg.crop_size:
            raise DataError(
                f"image {path} is {w}x{h} after resizing, smaller than crop_size {cfg.crop_size}; "
                "use preprocess='resize_and_crop' or a larger load_size"
            )
        img = img.crop(
            (params.crop_x, params.crop_y, params.crop_x + cfg.crop_size, params.crop_y + cfg.crop_size)
        )
    elif cfg.preprocess == "none":
        w, h = img.size
        m = cfg.multiple_of
        nw, nh = max(m, w // m * m), max(m, h // m * m)
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), method)
    if params.flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float CHW tensor in [-1, 1] (the project's image convention)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).div(127.5).sub(1.0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A CHW tensor in [-1, 1] as an 8-bit RGB image (the round-trip through uint8 that FID expects)."""
    if tensor.ndim != 3:
        raise ValueError(f"to_pil expects a CHW tensor, got shape {tuple(tensor.shape)}")
    arr = tensor.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().byte()
    if arr.shape[0] == 1:
        arr = arr.expand(3, -1, -1)
    return Image.fromarray(arr.permute(1, 2, 0).numpy(), "RGB")
