"""The teacher as every method distils from it, and the checks that it fits the data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...models import Generator
from .data import split_batch


def plain_teacher(teacher: Generator) -> Generator:
    """A frozen copy of ``teacher`` ready to distil from (spectral norm folded into the weights)."""
    out = copy.deepcopy(teacher)
    if out.options.get("spectral_norm"):
        out.remove_spectral_norm()  # type: ignore[attr-defined]
    return out.eval().requires_grad_(False)


def in_channels(g: Generator) -> int:
    """The channels a generator reads: image channels, or label channels for semantic families."""
    return int(g.options.get("in_channels", g.options.get("label_channels", 3)))


def out_channels(g: Generator) -> int:
    return int(g.options.get("out_channels", 3))


def check_teacher_fits_data(teacher: Generator, dataset: Any, root: Path) -> None:
    """Fail before training when the teacher's input or output channels differ from the data's."""
    from ...training.state import preserved_rng

    with preserved_rng():  # reading an item must not shift the run's random stream
        x, y = split_batch(dataset[0])
    expected = {
        "input": teacher.options.get("in_channels", teacher.options.get("label_channels")),
        "output": teacher.options.get("out_channels"),
    }
    for what, want, got in (
        ("input", expected["input"], x.shape[0]),
        ("output", expected["output"], y.shape[0]),
    ):
        if want is not None and int(want) != int(got):
            raise DataError(
                f"{root}: the teacher's {what} has {want} channels, but the dataset's {what} images have {got}"
            )
