"""Non-finite guards for every metric: NaN or inf in outputs, features or statistics is a named error.

A generator whose weights hold NaN (a diverged run, a damaged file) makes every downstream number
meaningless, and some of the maths does not even return: scipy's ``sqrtm`` can spin without end on a
NaN matrix, ONNX Runtime's int8 calibrator fails with ``AssertionError: scale issue``. Each metric
checks what it is given with :func:`check_finite` first, so the user gets a :class:`NonFiniteError`
naming the model (and the file or images) at once, in time bounded by one pass over the values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import GanCompressError


class NonFiniteError(GanCompressError, ValueError):
    """A model's output, features or statistics hold NaN or infinite values."""


def model_name(model: Any) -> str:
    """How errors name ``model``: the file or folder it was loaded from, else its family and widths, else its class."""
    for attr in ("source_path", "path"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    family, arch = getattr(model, "family", None), getattr(model, "arch", None)
    if isinstance(family, str) and arch is not None:
        return f"{family} generator {arch}"
    return type(model).__name__


def count_non_finite(values: torch.Tensor | np.ndarray) -> tuple[int, int, int]:
    """(NaN count, infinite count, total) of ``values``."""
    if isinstance(values, torch.Tensor):
        v = values.detach()
        if not (v.is_floating_point() or v.is_complex()):
            return 0, 0, v.numel()
        return int(torch.isnan(v).sum()), int(torch.isinf(v).sum()), v.numel()
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.inexact):
        return 0, 0, arr.size
    return int(np.isnan(arr).sum()), int(np.isinf(arr).sum()), arr.size


def check_finite(values: torch.Tensor | np.ndarray, what: str, hint: str = "") -> None:
    """Raise :class:`NonFiniteError` ``"{what} hold N NaN and M infinite values (of T) …"`` if any value is not finite.

    Example:
        >>> check_finite(fake, f"the output of {model_name(generator)}")
    """
    if isinstance(values, torch.Tensor):
        ok = bool(torch.isfinite(values.detach()).all()) if values.is_floating_point() else True
    else:
        arr = np.asarray(values)
        ok = bool(np.isfinite(arr).all()) if np.issubdtype(arr.dtype, np.inexact) else True
    if ok:
        return
    nan, inf, total = count_non_finite(values)
    raise NonFiniteError(
        f"{what} hold {nan} NaN and {inf} infinite values (of {total}); no metric can be computed from "
        f"them{'; ' + hint if hint else ''}"
    )


OUTPUT_HINT = "the model's weights may hold NaN (a diverged run or a damaged file): check it, or retrain it"
