"""Rendering glyphs: one character of one font, centred on a square white canvas, black ink.

Shared by the embedded font dataset, the CJK font dataset and the glyph-identity extractor, so that
every glyph the library ever compares was drawn the same way.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError

# The baseline sits at 78% of the height and the em is 70% of the canvas: capitals, descenders and most
# accents fit; glyphs that still spill over the border are dropped rather than clipped.
BASELINE = 0.78
EM = 0.70
BLANK_INK = 8  # a glyph whose darkest pixel is lighter than 255-8 draws nothing


def font_codepoints(path: str | Path, index: int = 0) -> set[int]:
    """Code points the font maps to a glyph (its best cmap); ``index`` selects a face of a .ttc."""
    from fontTools.ttLib import TTFont

    path = Path(path)
    if not path.is_file():
        raise DataError(f"font file {path} does not exist")
    try:
        with TTFont(str(path), fontNumber=index, lazy=True) as font:
            return set(font.getBestCmap() or {})
    except Exception as exc:  # fontTools raises many types for broken files
        raise DataError(f"cannot read font {path} (face {index}): {exc}") from exc


@functools.lru_cache(maxsize=32)
def _font(path: str, px: int, index: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, px, index=index)
    except OSError as exc:
        raise DataError(f"cannot load font {path} (face {index}): {exc}") from exc


def render_glyph(
    path: str | Path, char: str, size: int, index: int = 0, em: float = EM, *, centre: bool = False
) -> np.ndarray | None:
    """``char`` as a (size, size) uint8 array (255 = paper), or None if it is blank or spills over the edge.

    ``centre=True`` centres the ink vertically too (ideographs have no baseline to keep); by default
    glyphs share one baseline.
    """
    font = _font(str(path), max(4, round(size * em)), index)
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    if right <= left or bottom <= top:
        return None
    # Centre the ink horizontally (italics lean, advances differ) but keep one baseline for all glyphs,
    # so that a comma stays low and an apostrophe high.
    x = (size - (right - left)) / 2 - left
    baseline = (size - (bottom - top)) / 2 - top if centre else round(size * BASELINE)
    if top + baseline < 0 or bottom + baseline > size or right - left > size:
        return None
    canvas = Image.new("L", (size, size), 255)
    ImageDraw.Draw(canvas).text((x, baseline), char, font=font, fill=0, anchor="ls")
    arr = np.asarray(canvas)
    if 255 - int(arr.min()) < BLANK_INK:
        return None
    return arr


def mpl_font_dir() -> Path:
    """The TrueType fonts that ship inside matplotlib (DejaVu, STIX, Computer Modern)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"
