"""Hooks into the training loop: how methods extend :func:`gancompress.training.fit` without a loop of their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from .distributed import DistContext


@dataclass
class TrainState:
    """What the loop exposes to callbacks; ``step`` counts completed optimisation steps."""

    task: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    run_dir: Path
    max_steps: int
    device: torch.device
    ctx: DistContext
    step: int = 0
    lr_scale: float = 1.0
    last_checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Override any of these; every one is a no-op by default.

    A callback with state to carry across a resume returns it from ``state_dict`` (tensors, numbers,
    strings, lists, dicts) and gets it back in ``load_state_dict``; it is stored in each checkpoint
    under the callback's ``name``.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_step_end(self, state, logs):
        ...         if state.step % 100 == 0:
        ...             print(state.step, logs["loss_g"])
        >>> fit(task, data, "runs/x", batch_size=1, max_steps=1000, callbacks=[PrintLoss()])
    """

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_fit_start(self, state: TrainState) -> None:
        """After models, optimizers and any resumed checkpoint are in place."""

    def on_step_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """After each optimisation step (``state.step`` already counts it) and its LR-scheduler step."""

    def on_log(self, state: TrainState, logs: dict[str, float], row: dict[str, float]) -> None:
        """Every ``log_every`` steps and at the last one: ``row`` is the logged line (step, losses,
        ``lr_<optimizer>``, ``images_per_s``), on rank 0 only."""

    def on_checkpoint(self, state: TrainState, path: Path) -> None:
        """After a checkpoint is written (rank 0 only)."""

    def on_rollback(self, state: TrainState) -> None:
        """After a non-finite loss rolled the run back (``state.step`` is the checkpoint's step)."""

    def on_fit_end(self, state: TrainState, result: dict[str, Any]) -> None:
        """When training has reached ``max_steps``."""

    def on_teardown(self, state: TrainState) -> None:
        """When :func:`fit` leaves, finished or not (close files and progress bars here)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
