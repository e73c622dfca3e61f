"""One meaning of ``--device`` on every verb: ``auto`` (CUDA when available, else CPU), ``cpu``,
``cuda``, ``cuda:N`` or ``mps``, checked against what this torch build and machine offer.

Example:
    >>> resolve_device("auto")        # 'cuda' on a GPU machine, 'cpu' elsewhere
    'cpu'
"""

from __future__ import annotations

import re

import torch

from ..errors import ConfigError

DEVICE_HELP = (
    "auto (CUDA when available, else CPU; the default), cpu, cuda, cuda:N or mps "
    "(under torchrun, cuda means each process's LOCAL_RANK GPU)"
)
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(spec: str | None = "auto") -> str:
    """The device ``spec`` names, as a string torch accepts; a named error when it is not usable here.

    ``auto`` (or None) gives ``cuda`` when a CUDA device is visible, else ``cpu``. ``cuda`` stays
    without an index, so that a torchrun process can pick its ``LOCAL_RANK`` device.
    """
    text = "auto" if spec is None else str(spec).strip().lower()
    match = _PATTERN.match(text)
    if not match or (match.group(2) is not None and match.group(1) not in ("cuda",)):
        raise ConfigError(f"--device {spec}: not a device; use {DEVICE_HELP}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return "cpu"
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"--device {spec}: no Apple MPS device here; use --device auto or cpu")
        return "mps"
    if torch.version.cuda is None and torch.version.hip is None:
        raise ConfigError(
            f"--device {spec}: this torch build ({torch.__version__}) has no CUDA support; "
            "use --device auto or cpu, or install a CUDA build of torch"
        )
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"--device {spec}: no CUDA device is visible; use --device auto or cpu")
    if index is not None and int(index) >= count:
        raise ConfigError(f"--device {spec}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1})")
    return text
