"""Validate before allocating: what a network, an input size or a calibration set would need, first.

A 300-byte ``config.json`` saying ``num_blocks: 1000000``, a ``.pth`` whose shapes claim a width of
10⁶, ``profile --size 100000 100000`` or ``export --calibration-size 100000`` must fail at once with
an error naming the field, not after minutes of swapping or an out-of-memory kill. Everything here
works on the meta device (shapes, no storage) or on a weights file's header:

* :func:`check_buildable` checks a family's options and ArchSpec: structural counts (``num_*``,
  ``*_downsample``) against :data:`MAX_COUNT`, then the parameter bytes of the network, built on the
  meta device, against the memory this process can have (:func:`available_memory`);
* :func:`check_header_matches` compares those shapes with a safetensors file's header before any
  tensor is read;
* :func:`activation_bytes` / :func:`check_inference_memory` run the network on the meta device at the
  asked input size and compare what its activations (one input, or a calibration set) would need.

``GANCOMPRESS_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix) replaces the measured memory.

Example:
    >>> check_buildable("resnet", None, {"num_blocks": 1_000_000}, source="g/config.json")
    ConfigError: g/config.json: options.num_blocks = 1000000 is more than the largest supported 4096
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, GanCompressError

#: the largest structural count (blocks, layers, downsamplings) a network may have; the published
#: networks use at most a few dozen, and building 10⁶ blocks costs gigabytes of Python objects alone
MAX_COUNT = 4096
#: a safetensors header larger than this is damage, not a model (a header lists names and shapes)
MAX_HEADER_BYTES = 100 * 2**20
_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


class MemoryLimitError(ConfigError):
    """What was asked for would need more memory than this process can have."""


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    suffix = text[-1] if text and text[-1] in _SUFFIX else ""
    try:
        value = float(text[: len(text) - len(suffix)] if suffix else text)
    except ValueError:
        raise ConfigError(f"GANCOMPRESS_MEMORY_LIMIT: expected bytes such as 8G, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"GANCOMPRESS_MEMORY_LIMIT must be positive, got {text!r}")
    return int(value * _SUFFIX[suffix])


def _cgroup_room() -> int | None:
    """Memory left under this process's cgroup (v2 or v1) limit, when it has one."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max":
                return None
            limit, used = int(raw), int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit < 2**60:  # v1 reports "unlimited" as a huge number
            return max(0, limit - used)
    return None


def available_memory() -> int:
    """Bytes this process can still allocate: ``GANCOMPRESS_MEMORY_LIMIT``, else the smaller of the
    system's available memory and the room under the cgroup limit."""
    env = os.environ.get("GANCOMPRESS_MEMORY_LIMIT")
    if env:
        return _parse_bytes(env)
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            found.append(2**44)  # unknown: only the structural limits apply
    room = _cgroup_room()
    if room is not None:
        found.append(room)
    return min(found)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def _is_count(name: str) -> bool:
    return name.startswith("num_") or name.endswith("_downsample") or name.endswith("_layers")


def check_options(options: Mapping[str, Any], source: str) -> None:
    """Integers in ``options`` are non-negative, and structural counts at most :data:`MAX_COUNT`."""
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if value < 0:
            raise ConfigError(f"{source}: options.{name} must not be negative, got {value}")
        if _is_count(name) and value > MAX_COUNT:
            raise ConfigError(
                f"{source}: options.{name} = {value} is more than the largest supported {MAX_COUNT}"
            )


def build_on_meta(family: str, arch: Any, options: Mapping[str, Any], source: str) -> nn.Module:
    """The network ``family`` at ``arch`` / ``options`` on the meta device (shapes only), errors naming ``source``."""
    from ..models import GENERATORS

    check_options(options, source)
    try:
        cls = GENERATORS.get(family)
    except GanCompressError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        with torch.device("meta"):
            return cls.from_options(arch, dict(options))  # type: ignore[attr-defined]
    except GanCompressError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except (RuntimeError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise ConfigError(
            f"{source}: the {family} network cannot be built from these options ({exc})"
        ) from None


def parameter_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``module`` (meta tensors included: from their shapes)."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def check_buildable(
    family: str,
    arch: Any,
    options: Mapping[str, Any],
    *,
    source: str = "config",
    copies: int = 2,
) -> nn.Module:
    """Refuse a network that cannot be built in this process's memory; returns it on the meta device.

    ``copies``: how many times the weights are held at once (a loader holds the network and the read
    state dict: 2). Called by ``load_generator`` and the official-checkpoint importer before they
    allocate anything.

    Example:
        >>> meta = check_buildable(config["family"], config["arch"], config["options"], source="g/config.json")
    """
    meta = build_on_meta(family, arch, options, source)
    need = copies * parameter_bytes(meta)
    room = available_memory()
    if need > room:
        raise MemoryLimitError(
            f"{source}: a {family} network at these widths has {human(parameter_bytes(meta))} of weights "
            f"({human(need)} to load), more than the {human(room)} of memory available; check its "
            "options and widths"
        )
    return meta


def read_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file (names → dtype, shape, offsets), without reading tensors."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{path}: not a safetensors file (shorter than its 8-byte header length)"
                )
            (length,) = struct.unpack("<Q", head)
            size = os.fstat(fh.fileno()).st_size
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(
                    f"{path}: not a safetensors file (header length {length} of a {size}-byte file)"
                )
            header = json.loads(fh.read(length))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not an object)")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("shape"), list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
        ):
            raise CheckpointError(f"{path}: tensor {name!r} has no valid shape in the header")
    return header


def check_header_matches(meta: nn.Module, header: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """The weights file's tensor names and shapes are the network's (checked before any tensor is read)."""
    own = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    theirs = {k: tuple(v["shape"]) for k, v in header.items()}
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    shapes = sorted(
        f"{k}: file {theirs[k]} vs config {own[k]}" for k in set(own) & set(theirs) if own[k] != theirs[k]
    )
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source}: the weights do not match config.json's network "
            f"({mismatch_text(missing, unexpected, shapes)})"
        )


def mismatch_text(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    """How a state-dict mismatch is told: missing, unexpected and mis-shaped keys, 20 of each at most."""
    parts = []
    if missing:
        parts.append(f"missing keys: {', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}")
    if unexpected:
        parts.append(f"unexpected keys: {', '.join(unexpected[:20])}{' …' if len(unexpected) > 20 else ''}")
    if shapes:
        parts.append(f"shape mismatches: {'; '.join(shapes[:20])}")
    return " | ".join(parts)


def meta_twin(generator: nn.Module) -> nn.Module:
    """``generator`` rebuilt on the meta device (gancompress generators), else the module itself."""
    if next(generator.parameters(), torch.empty(0)).device.type == "meta":
        return generator
    family, options = getattr(generator, "family", None), getattr(generator, "options", None)
    if not isinstance(family, str) or not isinstance(options, Mapping):
        return generator
    with torch.device("meta"):
        twin = type(generator).from_options(generator.arch, dict(options))  # type: ignore[attr-defined]
    return twin.train(generator.training)


def plain_meta_twin(generator: nn.Module) -> nn.Module:
    """The meta twin of ``generator`` when it is exactly what its options build (same tensors, no hooks
    or parametrizations that change what runs), else ``generator`` itself."""
    from torch.nn.utils import parametrize

    twin = meta_twin(generator)
    if twin is generator:
        return generator
    for m in generator.modules():
        if m._forward_hooks or m._forward_pre_hooks or parametrize.is_parametrized(m):
            return generator
    own = {k: tuple(v.shape) for k, v in generator.state_dict().items()}
    if own != {k: tuple(v.shape) for k, v in twin.state_dict().items()}:
        return generator
    return twin


def activation_bytes(
    generator: nn.Module, size: tuple[int, int] | None, batch: int = 1
) -> tuple[int, int, int]:
    """(peak, total, input) bytes of one forward pass at ``size``, from a meta-device run.

    peak: the largest input + output of any one module (what eager inference holds at least);
    total: every module's output together (what a calibrator that records every tensor holds);
    input: the example input itself.
    """
    twin = meta_twin(generator)
    if not hasattr(twin, "example_input") or next(twin.parameters(), torch.empty(0)).device.type != "meta":
        return 0, 0, 0  # not a gancompress generator (an ONNX session, the identity): nothing to estimate
    with torch.device("meta"):
        example = twin.example_input(size, batch)  # type: ignore[operator]
    peak = total = 0

    def nbytes(x: Any) -> int:
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        if isinstance(x, (tuple, list)):
            return sum(nbytes(v) for v in x)
        return 0

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        nonlocal peak, total
        out = nbytes(output)
        peak = max(peak, nbytes(args) + out)
        if not list(module.children()):
            total += out

    handles = [m.register_forward_hook(hook) for m in twin.modules()]
    try:
        with torch.no_grad():
            twin(example)
    except (RuntimeError, ValueError, TypeError) as exc:
        family = getattr(generator, "family", type(generator).__name__)
        raise ConfigError(
            f"a {family} generator cannot run on a {tuple(example.shape[-2:])} input: {exc}"
        ) from None
    finally:
        for h in handles:
            h.remove()
    return peak + nbytes(example), total + nbytes(example), nbytes(example)


def check_inference_memory(
    generator: nn.Module,
    size: tuple[int, int] | None,
    *,
    what: str,
    batch: int = 1,
    count: int = 1,
    record_all: bool = False,
) -> None:
    """Refuse running ``generator`` at ``size`` when its activations would not fit in memory.

    ``count`` inputs held at once (a calibration set), each recording every intermediate tensor when
    ``record_all`` (ONNX Runtime's calibrators do). ``what`` names the option, e.g. ``--calibration-size``.
    """
    peak, total, one_input = activation_bytes(generator, size, batch)
    need = (count * total if record_all else peak + (count - 1) * one_input) + parameter_bytes(generator)
    room = available_memory()
    if need > room:
        shown = f"{size[0]}x{size[1]}" if size else "its default size"
        raise MemoryLimitError(
            f"{what}: running this {getattr(generator, 'family', 'generator')} network on {count} "
            f"input(s) at {shown} would need about {human(need)}, more than the {human(room)} of memory "
            "available; use a smaller size or count"
        )
