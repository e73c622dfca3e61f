"""Per-stage resume: a stage's folder records the inputs it was trained from, and refuses others.

The training loop resumes a stage from its newest checkpoint; that is only right when the stage is
resumed towards the same thing (the same teacher, seed, MACs target, subnet, ...). Every stage of
every method writes its inputs' fingerprint to ``<stage>/inputs.json`` before it trains; a resumed
run whose inputs differ is refused with the fields that differ named (``--no-resume`` starts over).
Schedule lengths are not inputs: an interrupted stage may be resumed with a longer schedule. Inputs
an earlier stage produced (the subnet a search or a pruning stage chose) start the stage over when
they change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError, ConfigError
from ...utils.files import atomic_write_json


def weights_digest(module: nn.Module) -> str:
    """A short hash of a module's weights and buffers (who the teacher is, as a fingerprint field)."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _fmt(record: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={record.get(k)!r}" for k in keys)


def check_inputs(
    path: Path,
    inputs: dict[str, Any],
    resume: bool,
    what: str = "made with",
    derived: tuple[str, ...] = (),
) -> bool:
    """Refuse to resume the stage recorded at ``path`` towards other ``inputs``; then record them.

    ``derived`` names inputs that an earlier stage produced (e.g. the subnet a search chose): when
    only those differ the stage starts over rather than being refused. Returns whether the stage may
    resume.

    Example:
        >>> check_inputs(run / "prune" / "inputs.json", {"target_macs": 1.2e8}, resume=True)
        True
    """
    current = json.loads(json.dumps(inputs, default=str))
    if resume and path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path} is not readable JSON ({exc}); delete it, or use --no-resume"
            ) from None
        if not isinstance(previous, dict):
            raise CheckpointError(f"{path} holds no record of inputs; delete it, or use --no-resume")
        differ = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if differ and set(differ) <= set(derived):
            atomic_write_json(path, current)
            return False
        if differ:
            raise ConfigError(
                f"{path}: this stage was {what} {_fmt(previous, differ)}, not {_fmt(current, differ)}: "
                "use another --out, or --no-resume to start over"
            )
    atomic_write_json(path, current)
    return resume
