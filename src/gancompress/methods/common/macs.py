"""MACs of a generator family at any widths, profiled on the meta device (no weights allocated)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...arch import ArchSpec
from ...errors import CheckpointError
from ...metrics.profile import profile_generator
from ...models import Generator
from ...utils.files import atomic_write_json


def profile_arch(cls: type, options: Mapping[str, Any], arch: ArchSpec | None, size: tuple[int, int]):
    """Profile a generator of ``cls`` at ``arch`` without allocating weights (meta device)."""
    with torch.device("meta"):
        net = cls.from_options(arch, dict(options))
    return profile_generator(net, tuple(size))


class MacsTable:
    """Paper-convention MACs of ``generator``'s family at other widths, at ``size``, cached in JSON.

    Example:
        >>> table = MacsTable(student, (256, 256), run / "macs_cache.json")
        >>> table(student.parse_arch("16_16_32_16_32_32_16_16"))
        2668437504
    """

    def __init__(self, generator: Generator, size: tuple[int, int], cache_path: Path | None = None) -> None:
        self.cls = type(generator)
        self.options = dict(generator.options)
        self.size = tuple(size)
        self.path = cache_path
        self.entries: dict[str, int] = {}
        if cache_path is not None and cache_path.is_file():
            try:
                entries = json.loads(cache_path.read_text())["entries"]
                if any(isinstance(v, bool) or not isinstance(v, int) for v in entries.values()):
                    raise TypeError("an entry is not an integer")
                self.entries = {str(k): int(v) for k, v in entries.items()}
            except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
                raise CheckpointError(f"{cache_path}: not a readable MACs cache ({exc}); delete it") from None

    def __call__(self, arch: ArchSpec) -> int:
        key = f"{arch}|{self.size[0]}x{self.size[1]}"
        if key not in self.entries:
            self.entries[key] = profile_arch(self.cls, self.options, arch, self.size).macs_paper
            if self.path is not None:
                atomic_write_json(self.path, {"version": 1, "entries": self.entries})
        return self.entries[key]


def profile_dict(p) -> dict[str, Any]:
    """The summary's form of a profile: params and MACs in both conventions."""
    return {"params": p.params, "macs_paper": p.macs_paper, "macs_true": p.macs_true}
