"""One training stage of a method: its length from the recipe, run by the project's training loop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ...training.callbacks import Callback
from ..base import MethodOptions
from .recipe import StageConfig


def stage_steps(stage: StageConfig, num_images: int, batch_size: int) -> tuple[int, int | None]:
    """(total steps, step where the linear LR decay starts) of a stage.

    ``max_steps`` shortens the whole schedule, keeping the constant and decaying parts in proportion.

    Example:
        >>> stage_steps(StageConfig(epochs=1, decay_epochs=3, max_steps=40), num_images=100, batch_size=1)
        (40, 10)
    """
    steps_per_epoch = max(1, num_images // batch_size)
    epochs = stage.epochs + stage.decay_epochs
    total = epochs * steps_per_epoch
    if stage.max_steps is not None:
        total = min(total, stage.max_steps)
    if not stage.decay_epochs:
        return total, None
    return total, round(total * stage.epochs / epochs)


def run_stage(
    task: nn.Module,
    train: Dataset,
    stage: StageConfig,
    run_dir: Path,
    options: MethodOptions,
    batch_size: int,
    num_workers: int,
    label: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train ``task`` with the project's one training loop (resumable from ``run_dir``); ``callbacks``
    go to ``fit`` (e.g. a method's own learning-rate schedule).

    ``batch_size`` is per process: under torchrun an epoch is ``len(train) // (batch_size × WORLD_SIZE)`` steps.
    """
    from ...training import fit
    from ...training.distributed import world_size

    total, decay_from = stage_steps(stage, len(train), batch_size * world_size())
    start = time.perf_counter()
    result = fit(
        task,
        train,
        run_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        max_steps=total,
        decay_from=decay_from,
        checkpoint_every=stage.checkpoint_every,
        log_every=stage.log_every,
        resume=options.resume,
        seed=options.seed,
        device=options.device,
        on_nonfinite=stage.on_nonfinite,
        precision=options.precision,
        callbacks=callbacks,
    )
    return {
        "steps": total,
        "trained_steps": result["step"] - result["start_step"],
        "resumed_from": result["resumed_from"],
        "wall_s": time.perf_counter() - start,
        "fit": result,
    }
