"""Built-in datasets in a cache folder: built on first use, atomically, then reused; and the one
parser of ``builtin:`` data specs that every verb uses.

The cache lives in ``$GANCOMPRESS_CACHE/datasets`` (default ``~/.cache/gancompress/datasets``).
A spec reads ``builtin:NAME[-paired|-unpaired][@SIZE]``: ``builtin:fonts`` is the paired fonts
dataset at 64 px on every verb, ``builtin:fonts-unpaired@128`` the unpaired one at 128 px. The only
reader that needs a given layout is the training of an unpaired task (CycleGAN, MUNIT), which reads
``builtin:fonts`` as ``builtin:fonts-unpaired``; a spec that names the other layout is refused there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError
from .fonts import MAX_SIZE, MIN_SIZE, build_font_dataset
from .metadata import METADATA_NAME

BUILTIN_VERSION = 1  # bump when the builder's output changes, so stale caches are not reused
BUILTIN_PREFIX = "builtin:"
BUILTIN_NAMES = ("fonts",)
DEFAULT_BUILTIN_SIZE = 64
LAYOUTS = ("paired", "unpaired")
_SPEC = re.compile(r"^(?P<name>[a-z0-9_]+?)(?:-(?P<layout>paired|unpaired))?(?:@(?P<size>[^@]*))?$")


@dataclass(frozen=True)
class BuiltinSpec:
    """A parsed ``builtin:`` spec; ``layout`` and ``size`` are None where the spec does not say."""

    name: str
    layout: str | None = None
    size: int | None = None


def is_builtin(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a ``builtin:`` data spec rather than a folder."""
    return str(spec).startswith(BUILTIN_PREFIX)


def parse_builtin_spec(spec: str, option: str = "--data") -> BuiltinSpec:
    """``"builtin:fonts-unpaired@128"`` → ``BuiltinSpec("fonts", "unpaired", 128)``; a named error if malformed.

    Example:
        >>> parse_builtin_spec("builtin:fonts")
        BuiltinSpec(name='fonts', layout=None, size=None)
    """
    text = str(spec)
    if not is_builtin(text):
        raise ConfigError(f"{option} {text}: not a builtin: spec")
    body = text[len(BUILTIN_PREFIX) :].strip().lower()
    match = _SPEC.match(body)
    if not match:
        raise ConfigError(
            f"{option} {text}: expected builtin:NAME[-paired|-unpaired][@SIZE], e.g. builtin:fonts or "
            f"builtin:fonts-unpaired@128; built-in datasets: {', '.join(BUILTIN_NAMES)}"
        )
    size = None
    if match.group("size") is not None:
        raw = match.group("size")
        if not raw.isdigit() or not MIN_SIZE <= int(raw) <= MAX_SIZE:
            raise ConfigError(
                f"{option} {text}: the size after @ must be a whole number in [{MIN_SIZE}, {MAX_SIZE}]"
            )
        size = int(raw)
    return BuiltinSpec(match.group("name"), match.group("layout"), size)


def resolve_data_spec(
    spec: str | os.PathLike,
    *,
    layout: str | None = None,
    size: int | None = None,
    option: str = "--data",
    build: bool = True,
) -> Path:
    """The dataset folder ``spec`` names: a folder, or a ``builtin:`` spec (built on first use).

    ``layout`` is the layout the reader needs (``paired`` / ``unpaired``; None: either, and a silent
    spec means paired); ``size`` the size a spec without ``@SIZE`` gets (None: 64). Every verb calls
    this, so one spec means the same data everywhere. With ``build=False`` a built-in dataset's cache
    path is returned without building it.

    Example:
        >>> resolve_data_spec("builtin:fonts") == resolve_data_spec("builtin:fonts-paired@64")
        True
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
    if not is_builtin(spec):
        path = Path(spec).expanduser()
        if not path.is_dir():
            what = "is a file, not a dataset folder" if path.exists() else "no such directory"
            raise DataError(f"{option} {spec}: {what}")
        return path
    parsed = parse_builtin_spec(str(spec), option)
    if layout is not None and parsed.layout is not None and parsed.layout != layout:
        raise ConfigError(
            f"{option} {spec}: this run reads {layout} data; use builtin:{parsed.name}-{layout} "
            f"(or builtin:{parsed.name})"
        )
    chosen = parsed.layout or layout or "paired"
    pixels = parsed.size or size or DEFAULT_BUILTIN_SIZE
    if not build:
        return builtin_path(parsed.name, pixels, chosen == "paired")
    return ensure_builtin_dataset(parsed.name, size=pixels, paired=chosen == "paired")


def builtin_path(name: str, size: int, paired: bool, root: str | Path | None = None) -> Path:
    """Where built-in dataset ``name`` at ``size`` px lives in the cache (built or not)."""
    _check_name(name)
    base = Path(root) if root is not None else cache_dir() / "datasets"
    return base / f"{name}-{'paired' if paired else 'unpaired'}-{size}px-v{BUILTIN_VERSION}"


def _check_name(name: str) -> None:
    if name not in BUILTIN_NAMES:
        raise DataError(
            f"{name!r} is not embedded; the embedded dataset is 'fonts'. Larger datasets are built with "
            f"'gancompress data prepare {name} --out DIR' (see 'gancompress data list')"
        )


def cache_dir() -> Path:
    """``$GANCOMPRESS_CACHE`` or ``~/.cache/gancompress``."""
    env = os.environ.get("GANCOMPRESS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gancompress"


def ensure_builtin_dataset(
    name: str = "fonts", root: str | Path | None = None, size: int = 64, paired: bool = True
) -> Path:
    """The path of a built-in dataset, building it first if it is not in the cache yet.

    It is built in a temporary folder beside its final place and renamed, so an interrupted build
    never leaves a half dataset that a later call would trust.

    Example:
        >>> root = ensure_builtin_dataset("fonts", size=64)          # ~/.cache/gancompress/datasets/fonts-paired-64px-v1
        >>> build_dataset(root, "paired", "train")
    """
    final = builtin_path(name, size, paired, root)
    if (final / METADATA_NAME).is_file():
        return final
    if final.exists():
        raise DataError(f"{final} exists but holds no {METADATA_NAME}: an incomplete dataset; delete it")
    from ..utils.files import atomic_directory

    # Built beside its final place and renamed (utils/files.py); another process that finished first
    # keeps its copy (replace=False). A full or read-only cache is a StorageError naming the folder.
    with atomic_directory(final, replace=False) as tmp:
        build_font_dataset(tmp, size=size, paired=paired)
    return final
