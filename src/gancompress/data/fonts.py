"""The embedded default dataset: font style translation (zi2zi) from the fonts inside matplotlib.

Each sample is one character drawn in a source face (A) and a target face (B). The split is by
character, so no test character is ever seen in training, and characters whose glyphs are identical
to another's in either face (Latin A, Greek Alpha, Cyrillic A) are kept once, or the split would leak.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from .glyphs import font_codepoints, mpl_font_dir, render_glyph
from .metadata import write_metadata

# Latin, Latin-1 supplement, Latin Extended-A, Greek, Cyrillic, punctuation, currency, letterlike
# symbols, arrows and mathematical operators: the blocks DejaVu and STIX share most of.
CODEPOINT_RANGES = (
    (0x21, 0x7E),
    (0xA1, 0xFF),
    (0x100, 0x17F),
    (0x386, 0x3CE),
    (0x400, 0x45F),
    (0x2010, 0x205E),
    (0x20A0, 0x20BF),
    (0x2100, 0x214F),
    (0x2190, 0x21FF),
    (0x2200, 0x22FF),
)
SOURCE_FONT = "DejaVuSans.ttf"
TARGET_FONT = "STIXGeneralBolIta.ttf"
FONT_LICENCES = {
    "DejaVu": "DejaVu fonts licence (Bitstream Vera licence with DejaVu changes in the public domain)",
    "STIX": "SIL Open Font License 1.1",
    "cm": "Computer Modern (BaKoMa) fonts licence",
}
MIN_SIZE, MAX_SIZE = 16, 256


@dataclass(frozen=True)
class Glyphs:
    """Rendered glyphs of the characters both faces draw, after blank and duplicate removal."""

    codepoints: tuple[int, ...]
    source: np.ndarray  # (N, size, size) uint8
    target: np.ndarray  # (N, size, size) uint8


def licence_of(font_file: str) -> str:
    for prefix, text in FONT_LICENCES.items():
        if font_file.startswith(prefix):
            return text
    return "see the font's own licence"


def candidate_codepoints(ranges: tuple[tuple[int, int], ...] = CODEPOINT_RANGES) -> list[int]:
    return [cp for lo, hi in ranges for cp in range(lo, hi + 1) if cp != 0xAD]  # soft hyphen draws nothing


def render_shared_glyphs(
    source: str | Path,
    target: str | Path,
    size: int,
    codepoints: list[int] | None = None,
    *,
    source_index: int = 0,
    target_index: int = 0,
) -> Glyphs:
    """Render every candidate character present, non-blank and unclipped in both faces; drop duplicates."""
    shared = font_codepoints(source, source_index) & font_codepoints(target, target_index)
    candidates = [cp for cp in (codepoints or candidate_codepoints()) if cp in shared]
    seen_src: set[bytes] = set()
    seen_tgt: set[bytes] = set()
    kept, src_imgs, tgt_imgs = [], [], []
    for cp in candidates:
        a = render_glyph(source, chr(cp), size, source_index)
        if a is None:
            continue
        b = render_glyph(target, chr(cp), size, target_index)
        if b is None:
            continue
        ka, kb = _digest(a), _digest(b)
        if ka in seen_src or kb in seen_tgt:
            continue
        seen_src.add(ka)
        seen_tgt.add(kb)
        kept.append(cp)
        src_imgs.append(a)
        tgt_imgs.append(b)
    if not kept:
        raise DataError(f"fonts {source} and {target} share no drawable character among the candidates")
    return Glyphs(tuple(kept), np.stack(src_imgs), np.stack(tgt_imgs))


def split_characters(
    codepoints: tuple[int, ...], test_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """A seeded random split of the characters into (train, test), each sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = list(codepoints)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_fraction))
    return sorted(order[n_test:]), sorted(order[:n_test])


def _digest(arr: np.ndarray) -> bytes:
    return hashlib.blake2b(arr.tobytes(), digest_size=16).digest()


def glyph_name(cp: int) -> str:
    return f"U+{cp:04X}"


def codepoint_of(path: str | Path) -> int | None:
    """The code point a glyph file is named after (``U+00E9.png`` → 0xE9), or None."""
    stem = Path(path).stem
    if stem.startswith("U+"):
        try:
            return int(stem[2:], 16)
        except ValueError:
            return None
    return None


def _start_build(out: str | Path, size: int, font_dir: str | Path | None, what: str) -> tuple[Path, Path]:
    """(output folder, font folder) of a glyph builder, after checking ``size`` and that ``out`` is empty."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"{what} must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"output folder {out} already exists and is not empty")
    return out, Path(font_dir) if font_dir else mpl_font_dir()


def _save(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr, "L").convert("RGB").save(path, compress_level=3)


def build_font_dataset(
    out: str | Path,
    *,
    size: int = 64,
    paired: bool = True,
    source: str = SOURCE_FONT,
    target: str = TARGET_FONT,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_chars: int | None = None,
    font_dir: str | Path | None = None,
) -> Path:
    """Write the font translation dataset to ``out`` (which must not exist yet, or be empty).

    Paired: ``train/`` and ``test/`` with A|B side by side. Unpaired: ``trainA/`` and ``trainB/`` hold
    two disjoint halves of the training characters (no hidden pairs), ``testA/`` and ``testB/`` the
    same test characters, so paired metrics still work on the test split. Files are named ``U+XXXX.png``.

    Example:
        >>> build_font_dataset("/tmp/fonts64", size=64)     # ~1 s, ~480 characters
    """
    out, fdir = _start_build(out, size, font_dir, "font dataset size")
    start = time.perf_counter()
    glyphs = render_shared_glyphs(fdir / source, fdir / target, size)
    codepoints = glyphs.codepoints
    if max_chars is not None:
        # A seeded subset, not the first N, so tiny test datasets still mix scripts.
        pick = sorted(random.Random(seed + 1).sample(range(len(codepoints)), min(max_chars, len(codepoints))))
        glyphs = Glyphs(tuple(codepoints[i] for i in pick), glyphs.source[pick], glyphs.target[pick])
        codepoints = glyphs.codepoints
    train, test = split_characters(codepoints, test_fraction, seed)
    index = {cp: i for i, cp in enumerate(codepoints)}
    splits: dict[str, list[int]] = {}
    if paired:
        for split, cps in (("train", train), ("test", test)):
            folder = out / split
            folder.mkdir(parents=True, exist_ok=True)
            for cp in cps:
                i = index[cp]
                _save(
                    np.concatenate([glyphs.source[i], glyphs.target[i]], axis=1),
                    folder / f"{glyph_name(cp)}.png",
                )
            splits[split] = cps
    else:
        order = list(train)
        random.Random(seed + 2).shuffle(order)
        half = len(order) // 2
        parts = {"trainA": sorted(order[:half]), "trainB": sorted(order[half:]), "testA": test, "testB": test}
        for folder_name, cps in parts.items():
            folder = out / folder_name
            folder.mkdir(parents=True, exist_ok=True)
            images = glyphs.source if folder_name.endswith("A") else glyphs.target
            for cp in cps:
                _save(images[index[cp]], folder / f"{glyph_name(cp)}.png")
            splits[folder_name] = cps
    write_metadata(
        out,
        {
            "name": "fonts",
            "kind": "paired" if paired else "unpaired",
            "task": "font style translation (zi2zi)",
            "size": size,
            "seed": seed,
            "source_font": source,
            "target_font": target,
            "domains": {"A": source, "B": target},
            "counts": {k: len(v) for k, v in splits.items()},
            "characters": {k: "".join(chr(cp) for cp in v) for k, v in splits.items()},
            "licence": {source: licence_of(source), target: licence_of(target)},
            "build_seconds": round(time.perf_counter() - start, 2),
        },
    )
    return out


# Letter-like blocks beyond the dataset's: Latin Extended-B, IPA, Greek and Cyrillic supplements,
# phonetic extensions, Latin Extended Additional, Greek Extended, Latin Extended-C/D. Glyphs of the
# dataset's kind (strokes of letters), unlike box drawing or Arabic, which the source face also has.
UNLABELLED_RANGES = (
    (0x180, 0x24F),
    (0x250, 0x2AF),
    (0x370, 0x3FF),
    (0x460, 0x52F),
    (0x1D00, 0x1DBF),
    (0x1E00, 0x1EFF),
    (0x1F00, 0x1FFF),
    (0x2C60, 0x2C7F),
    (0xA720, 0xA7FF),
)


def build_unlabelled_glyphs(
    out: str | Path,
    *,
    size: int = 64,
    source: str = SOURCE_FONT,
    target: str = TARGET_FONT,
    ranges: list[list[int]] | None = None,
    font_dir: str | Path | None = None,
) -> Path:
    """Write source-face glyphs that have no target glyph to ``out/U+XXXX.png``: unlabelled inputs.

    Only characters the target face lacks are drawn, so none of them can be a character of the font
    dataset built from the same two faces (train or test); a glyph whose image equals one of that
    dataset's source glyphs (a Cyrillic letter drawn like a Latin one) is dropped too. A teacher maps
    these inputs, and a student distils from it on them (``data.unlabelled`` of the GAN Compression
    recipes).

    Example:
        >>> build_unlabelled_glyphs("/tmp/fonts-unlabelled")     # ~0.5 s, 1,051 glyphs at 64 px
    """
    out, fdir = _start_build(out, size, font_dir, "glyph size")
    start = time.perf_counter()
    spans = tuple((int(lo), int(hi)) for lo, hi in ranges) if ranges else UNLABELLED_RANGES
    paired = render_shared_glyphs(fdir / source, fdir / target, size)
    taken = {_digest(g) for g in paired.source}
    lacking = font_codepoints(fdir / source) - font_codepoints(fdir / target)
    out.mkdir(parents=True, exist_ok=True)
    kept: list[int] = []
    for cp in candidate_codepoints(spans):
        if cp not in lacking:
            continue
        glyph = render_glyph(fdir / source, chr(cp), size)
        if glyph is None or _digest(glyph) in taken:
            continue
        taken.add(_digest(glyph))
        _save(glyph, out / f"{glyph_name(cp)}.png")
        kept.append(cp)
    if not kept:
        raise DataError(f"{source} draws no character of the ranges that {target} lacks")
    write_metadata(
        out,
        {
            "name": "fonts-unlabelled",
            "kind": "images",
            "task": f"unlabelled inputs of the font dataset ({source} glyphs {target} does not have)",
            "size": size,
            "source_font": source,
            "excluded_font": target,
            "counts": {"images": len(kept)},
            "characters": {"images": "".join(chr(cp) for cp in kept)},
            "licence": {source: licence_of(source)},
            "build_seconds": round(time.perf_counter() - start, 2),
        },
    )
    return out
