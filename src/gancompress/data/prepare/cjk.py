"""``cjk-fonts``: CJK font style translation (zi2zi) from Debian's CJK fonts.

Each sample is one ideograph drawn in a source face (A) and a target face (B), e.g. Noto Sans CJK →
the Kouzan brush font. The split is by character (no test character is ever seen in training).
Some fonts map code points to empty glyphs or to one shared placeholder: blank glyphs are dropped,
and so is every glyph whose image occurs more than once in a face. A ``.ttc`` file holds several
regional faces (Noto Sans CJK JP / KR / SC / TC / HK, each with its own glyph shapes): one is
chosen by name, so the dataset is reproducible.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import DataError
from ..fonts import glyph_name, split_characters
from ..glyphs import font_codepoints, render_glyph
from ..metadata import write_metadata

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts")
# CJK Unified Ideographs (the basic block); extension A adds rarer characters most fonts lack.
IDEOGRAPH_RANGES = ((0x4E00, 0x9FFF),)
KOUZAN_LICENCE = (
    "public domain (its author, Aoyagi Kouzan, waives copyright; see the Debian package's copyright file)"
)
EM = 0.82  # ideographs fill their em square; a larger em than the Latin glyphs' keeps strokes legible


@dataclass(frozen=True)
class CJKFace:
    """A named face: its file, the regional face inside a .ttc, its Debian package and licence."""

    file: str
    face: str | None
    package: str
    licence: str


FACES = {
    "noto-sans": CJKFace("NotoSansCJK-Regular.ttc", "Noto Sans CJK SC", "fonts-noto-cjk", "SIL Open Font License 1.1"),
    "noto-sans-bold": CJKFace("NotoSansCJK-Bold.ttc", "Noto Sans CJK SC Bold", "fonts-noto-cjk", "SIL Open Font License 1.1"),
    "noto-serif": CJKFace("NotoSerifCJK-Regular.ttc", "Noto Serif CJK SC", "fonts-noto-cjk", "SIL Open Font License 1.1"),
    "noto-sans-jp": CJKFace("NotoSansCJK-Regular.ttc", "Noto Sans CJK JP", "fonts-noto-cjk", "SIL Open Font License 1.1"),
    "lxgw-wenkai": CJKFace("LXGWWenKai-Regular.ttf", None, "fonts-lxgw-wenkai", "SIL Open Font License 1.1"),
    "kouzan": CJKFace("kouzan-mouhitsu.ttf", None, "fonts-kouzan-mouhitsu", KOUZAN_LICENCE),
    "kouzan-gyosho": CJKFace("kouzan-mouhitsu-gyosho.ttf", None, "fonts-kouzan-mouhitsu", KOUZAN_LICENCE),
    "ukai": CJKFace("ukai.ttc", "AR PL UKai CN", "fonts-arphic-ukai", "Arphic Public License"),
}  # fmt: skip


def find_font_file(name: str, dirs: tuple[Path, ...] | None = None) -> Path:
    """The installed file called ``name`` under the system font folders, or a DataError naming the package."""
    dirs = FONT_DIRS if dirs is None else dirs
    for d in dirs:
        if d.is_dir():
            hit = next(iter(sorted(d.rglob(name))), None)
            if hit is not None:
                return hit
    package = next((f.package for f in FACES.values() if f.file == name), None)
    hint = f": apt-get install {package}" if package else ""
    raise DataError(f"font file {name} not found under {', '.join(map(str, dirs))}{hint}")


def face_index(path: str | Path, face: str | None) -> int:
    """The index of the face called ``face`` (full name, e.g. "Noto Sans CJK SC") inside a .ttc; 0 for a .ttf."""
    if face is None:
        return 0
    from fontTools.ttLib import TTCollection, TTFont

    path = Path(path)
    if path.suffix.lower() not in (".ttc", ".otc"):
        with TTFont(str(path), lazy=True) as font:
            names = [str(font["name"].getDebugName(4))]
    else:
        try:
            collection = TTCollection(str(path), lazy=True)
        except Exception as exc:  # fontTools raises many types for broken files
            raise DataError(f"cannot read font collection {path}: {exc}") from exc
        names = [str(f["name"].getDebugName(4)) for f in collection.fonts]
    if face in names:
        return names.index(face)
    raise DataError(f"font {path} has no face {face!r}; its faces: {', '.join(names)}")


def resolve_face(spec: str) -> tuple[Path, int, str, str]:
    """(file, face index, display name, licence) of a face name from ``FACES`` or ``PATH[#FACE NAME]``."""
    if spec in FACES:
        f = FACES[spec]
        path = find_font_file(f.file)
        return path, face_index(path, f.face), f.face or path.stem, f.licence
    file, _, face = spec.partition("#")
    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"font {spec!r} is neither a known face ({', '.join(FACES)}) nor an existing file")
    return path, face_index(path, face or None), face or path.stem, "see the font's own licence"


def _digest(arr: np.ndarray) -> bytes:
    return hashlib.blake2b(arr.tobytes(), digest_size=16).digest()


def render_face(path: Path, index: int, codepoints: list[int], size: int) -> dict[int, np.ndarray]:
    """Non-blank, unclipped, unique glyphs of ``codepoints`` in one face (placeholders shared by two or more code points dropped)."""
    glyphs = {}
    for cp in codepoints:
        arr = render_glyph(path, chr(cp), size, index, em=EM, centre=True)
        if arr is not None:
            glyphs[cp] = arr
    counts = Counter(_digest(a) for a in glyphs.values())
    return {cp: a for cp, a in glyphs.items() if counts[_digest(a)] == 1}


def build_cjk_fonts(
    out: str | Path,
    *,
    source: str = "noto-sans",
    target: str = "kouzan",
    size: int = 64,
    test_fraction: float = 0.1,
    max_chars: int | None = None,
    seed: int = 0,
    blocks: tuple[tuple[int, int], ...] = IDEOGRAPH_RANGES,
) -> Path:
    """Paired ``train/`` and ``test/`` folders of A|B glyph images (``U+XXXX.png``) for two CJK faces.

    ``source`` and ``target`` are names from ``FACES`` or ``PATH[#FACE NAME]``; ``max_chars`` takes a
    seeded random subset of the shared characters (default: all of them, 12,200 for Noto → Kouzan);
    ``blocks`` are the code point ranges drawn (default: CJK Unified Ideographs).

    Example:
        >>> build_cjk_fonts("runs/data/cjk", source="noto-sans", target="kouzan", max_chars=4000)
    """
    if not 16 <= size <= 256:
        raise DataError(f"cjk-fonts size must be between 16 and 256 px, got {size}")
    start = time.perf_counter()
    out = Path(out)
    src_path, src_index, src_name, src_licence = resolve_face(source)
    tgt_path, tgt_index, tgt_name, tgt_licence = resolve_face(target)
    shared = font_codepoints(src_path, src_index) & font_codepoints(tgt_path, tgt_index)
    candidates = sorted({cp for lo, hi in blocks for cp in range(int(lo), int(hi) + 1) if cp in shared})
    if not candidates:
        raise DataError(f"fonts {src_path} and {tgt_path} share no character in the blocks {blocks}")
    mapped = len(candidates)
    if max_chars is not None and max_chars < len(candidates):
        # Drawn before rendering so that small builds stay fast; a seeded sample, not the first N,
        # so a subset spans the whole block (radicals are ordered by stroke count).
        candidates = sorted(
            random.Random(seed + 1).sample(candidates, min(len(candidates), max_chars * 11 // 10))
        )
    src = render_face(src_path, src_index, candidates, size)
    tgt = render_face(tgt_path, tgt_index, candidates, size)
    kept = [cp for cp in candidates if cp in src and cp in tgt]
    if max_chars is not None:
        kept = sorted(random.Random(seed + 2).sample(kept, min(max_chars, len(kept))))
    if len(kept) < 2:
        raise DataError(f"fonts {src_path} and {tgt_path} share fewer than 2 drawable characters in {blocks}")
    train, test = split_characters(tuple(kept), test_fraction, seed)
    for split, cps in (("train", train), ("test", test)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for cp in cps:
            pair = np.concatenate([src[cp], tgt[cp]], axis=1)
            Image.fromarray(pair, "L").convert("RGB").save(folder / f"{glyph_name(cp)}.png", compress_level=3)
    write_metadata(
        out,
        {
            "name": "cjk-fonts",
            "kind": "paired",
            "task": "CJK font style translation (zi2zi)",
            "size": size,
            "seed": seed,
            "source_font": f"{src_path.name}#{src_name}",
            "target_font": f"{tgt_path.name}#{tgt_name}",
            "domains": {"A": src_name, "B": tgt_name},
            "counts": {"train": len(train), "test": len(test)},
            "shared_codepoints": mapped,
            "dropped_blank_or_duplicate": len(candidates)
            - len([cp for cp in candidates if cp in src and cp in tgt]),
            "characters": {"train": "".join(map(chr, train)), "test": "".join(map(chr, test))},
            "licence": {src_name: src_licence, tgt_name: tgt_licence},
            "build_seconds": round(time.perf_counter() - start, 2),
        },
    )
    return out
