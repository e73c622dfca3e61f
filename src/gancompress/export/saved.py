"""The saved-model format: a directory with ``config.json`` and ``model.safetensors``.

``config.json`` records the format and its version, the family, the family's options and the
ArchSpec, so ``load_generator(path)`` rebuilds the exact network without unpickling anything.
Writes are atomic: files go to a temporary directory that is renamed into place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, ConfigError, StorageError
from ..models import GENERATORS, Generator
from ..utils.files import atomic_directory
from .limits import check_buildable, check_header_matches, mismatch_text, read_safetensors_header

FORMAT = "gancompress.generator"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_generator(
    generator: Generator, path: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``generator`` to the directory ``path`` (replaced atomically if it exists).

    ``extra`` is stored under ``"meta"`` (e.g. the method that made it, the teacher it came from).

    Example:
        >>> save_generator(create_generator("resnet", base_width=8), "out/g")
    """
    if not isinstance(generator, Generator):
        raise ConfigError(f"save_generator needs a gancompress Generator, got {type(generator).__name__}")
    if any(".parametrizations." in k for k in generator.state_dict()):
        raise CheckpointError(
            "remove spectral norm (generator.remove_spectral_norm()) before saving a generator"
        )
    path = Path(path)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **generator.get_config()}
    if extra:
        config["meta"] = extra
    tensors = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    # A temporary directory renamed into place (utils/files.py): the umask's permissions, a symlinked
    # ``path`` written through, the previous model intact on a full disk.
    with atomic_directory(path) as tmp:
        try:
            save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT})
        except SafetensorError as exc:  # its I/O errors (a full disk) are not OSErrors
            raise StorageError(None, f"cannot write {path}: {exc}") from None
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``config.json`` of a saved generator directory."""
    cfg_path = Path(path) / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{cfg_path}: missing; a saved generator directory holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{cfg_path}: not a generator config (nested too deeply to read)") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: must hold a JSON object")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: field 'format' must be {FORMAT!r}, got {config.get('format')!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{cfg_path}: field 'format_version' {version!r} is not supported (this version reads 1..{FORMAT_VERSION})"
        )
    for key, kind in (("family", str), ("arch", str), ("options", dict)):
        if not isinstance(config.get(key), kind):
            raise CheckpointError(
                f"{cfg_path}: field {key!r} must be a {kind.__name__}, got {config.get(key)!r}"
            )
    return config


def build_from_config(config: dict[str, Any], source: str = "config") -> Generator:
    """Build the (randomly initialised) generator a config describes."""
    try:
        cls = GENERATORS.get(config["family"])
        return cls.from_options(config["arch"], config["options"])  # type: ignore[attr-defined]
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def load_generator(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Generator:
    """Rebuild a generator saved by :func:`save_generator`, in eval mode.

    Example:
        >>> g = load_generator("out/g")
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a saved generator directory")
    config = read_config(path)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    # Validate before allocating (export/limits.py): the network config.json describes is built on
    # the meta device, its weight bytes compared with the memory available and its shapes with the
    # safetensors header; only then is anything real built or read.
    try:
        meta = check_buildable(
            config["family"], config["arch"], config["options"], source=str(path / CONFIG_NAME)
        )
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    check_header_matches(meta, read_safetensors_header(weights), str(weights))
    generator = build_from_config(config, str(path / CONFIG_NAME))
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    load_state_strict(generator, state, str(weights))
    generator.source_path = str(path)  # how errors name the model (metrics.finite.model_name)
    return generator.eval()


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` with an error that lists missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source}: state dict does not match the network ({mismatch_text(missing, unexpected, shapes)})"
        )
    model.load_state_dict(state, strict=True)
