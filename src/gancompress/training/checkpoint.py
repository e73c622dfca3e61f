"""Training checkpoints: one directory per step, written whole or not at all.

``checkpoints/step_0001000/`` holds ``model.safetensors`` (the Task's state dict: every trained
network), ``state.safetensors`` (optimizer, scheduler and RNG tensors) and ``state.json`` (the step,
the data position and every non-tensor value). The directory is assembled under a temporary name
and renamed into place, so a run killed at any moment leaves only complete checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from ..errors import CheckpointError, StorageError
from ..utils.files import atomic_write_bytes, atomic_write_json
from .state import flatten, unflatten

CHECKPOINT_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d{7,})$")


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step_{step:07d}"


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns: the model state, and the rest of the training state."""

    path: Path
    step: int
    model: dict[str, torch.Tensor]
    state: dict[str, Any]


def model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    # Cloned per key: safetensors refuses tensors sharing memory, and loading copies into each key anyway.
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(root: Path, step: int, module: nn.Module, state: dict[str, Any]) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; returns its directory."""
    root = Path(root)
    final = step_dir(root, step)
    tmp = root / f".{final.name}.tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tensors: dict[str, torch.Tensor] = {}
        meta = {"version": CHECKPOINT_VERSION, "step": step, "state": flatten(state, tensors)}
        atomic_write_bytes(tmp / "model.safetensors", st_save(model_state(module)))
        atomic_write_bytes(tmp / "state.safetensors", st_save(tensors))
        atomic_write_json(tmp / "state.json", meta)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as exc:
        # A full disk must not keep the half-written checkpoint (it holds the space the user needs back).
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, StorageError):
            raise
        raise StorageError(exc.errno, f"cannot write checkpoint {final}: {exc.strerror or exc}") from None
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file() and (p / "model.safetensors").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def prune_checkpoints(root: Path, keep_last: int, protect: tuple[Path, ...] = ()) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (and stale temporary directories)."""
    root = Path(root)
    found = list_checkpoints(root)
    for _, path in found[: max(0, len(found) - keep_last)]:
        if path not in protect:
            shutil.rmtree(path, ignore_errors=True)
    if root.is_dir():
        for p in root.glob(".step_*.tmp"):
            shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint directory; a missing or damaged file is a :class:`CheckpointError` naming it."""
    path = Path(path)
    files = {name: path / name for name in ("model.safetensors", "state.safetensors", "state.json")}
    for f in files.values():
        if not f.is_file():
            raise CheckpointError(f"checkpoint {path} is incomplete: {f.name} is missing")
    try:
        meta = json.loads(files["state.json"].read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{files['state.json']} is not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("version") != CHECKPOINT_VERSION or "step" not in meta:
        raise CheckpointError(f"{files['state.json']} is not a gancompress training checkpoint (version 1)")
    if isinstance(meta["step"], bool) or not isinstance(meta["step"], int) or meta["step"] < 0:
        raise CheckpointError(
            f"{files['state.json']}: step must be a non-negative integer, got {meta['step']!r}"
        )
    tensors = {}
    for key in ("model.safetensors", "state.safetensors"):
        try:
            tensors[key] = st_load(files[key].read_bytes())
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{files[key]} is not a readable safetensors file ({exc})") from None
    try:
        state = unflatten(meta["state"], tensors["state.safetensors"])
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise CheckpointError(f"{files['state.json']} does not match state.safetensors ({exc})") from None
    return Checkpoint(path, int(meta["step"]), tensors["model.safetensors"], state)


def load_model_state(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module`` strictly; a mismatch names the checkpoint and the keys."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{where} does not fit this network: {exc}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{where} does not fit this network: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
