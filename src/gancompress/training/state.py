"""Nested training state (optimizer and scheduler state dicts, RNG states) as safetensors + JSON.

Tensors go to a safetensors file under generated keys; everything else goes to JSON with the
tensors replaced by references, so a checkpoint never needs unpickling to be read back.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_TENSOR, _TUPLE, _DICT, _NDARRAY = "__tensor__", "__tuple__", "__dict__", "__ndarray__"


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """JSON-able form of ``obj``; its tensors are moved into ``tensors`` (keys ``prefix.N``).

    Example:
        >>> tensors = {}
        >>> flatten({"state": {0: {"step": torch.tensor(3.0)}}}, tensors)
        {'__dict__': [['state', {'__dict__': [[0, {'__dict__': [['step', {'__tensor__': 't.0'}]]}]]}]]}
    """
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}.{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        key = f"{prefix}.{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {_NDARRAY: key}
    if isinstance(obj, dict):
        # Keys keep their type (optimizer state is keyed by int), so dicts become lists of pairs.
        return {_DICT: [[k, flatten(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [flatten(v, tensors, prefix) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _NDARRAY in obj:
            return tensors[obj[_NDARRAY]].numpy()
        if _DICT in obj:
            return {k: unflatten(v, tensors) for k, v in obj[_DICT]}
        if _TUPLE in obj:
            return tuple(unflatten(v, tensors) for v in obj[_TUPLE])
        raise ValueError(f"unknown entry {sorted(obj)} in checkpoint state")
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA, when present) generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class preserved_rng:
    """Context manager: the code inside may draw random numbers; the global generators are restored after.

    Example:
        >>> with preserved_rng(seed=7):
        ...     x = torch.rand(1)      # the same every time; the training RNG stream is untouched
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def __enter__(self) -> preserved_rng:
        self._saved = rng_state()
        if self.seed is not None:
            seed_everything(self.seed)
        return self

    def __exit__(self, *exc: object) -> None:
        set_rng_state(self._saved)
