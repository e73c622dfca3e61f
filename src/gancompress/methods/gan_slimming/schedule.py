"""GAN Slimming's learning-rate schedule: cosine decay, as the official ``gs.py``.

The official code steps ``CosineAnnealingLR(optimizer, T_max=epochs)`` once per epoch for G, D and
the γ optimiser, and its proximal threshold is the current γ learning rate × rho. Here the same
factor ``(1 + cos(π · epoch / epochs)) / 2`` replaces the training loop's constant-then-linear one
through a callback (``fit(..., callbacks=[CosineLR(steps_per_epoch)])``), so every optimizer of the
task, γ's included, follows it, and so does the threshold (the task reads γ's current rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ...errors import ConfigError
from ...training.callbacks import Callback, TrainState


def cosine_decay(max_steps: int, steps_per_epoch: int | None = None) -> Callable[[int], float]:
    """LR factor at a step: ``(1 + cos(π t / T)) / 2`` with t, T in epochs (``steps_per_epoch`` given:
    constant within an epoch, as the official per-epoch scheduler) or in steps.

    Example:
        >>> f = cosine_decay(100); f(0), f(50), f(100)
        (1.0, 0.5, 0.0)
    """
    if max_steps <= 0:
        raise ConfigError(f"cosine decay needs a positive number of steps, got {max_steps}")
    if steps_per_epoch is not None and steps_per_epoch <= 0:
        raise ConfigError(f"steps_per_epoch must be positive, got {steps_per_epoch}")

    def factor(step: int) -> float:
        if steps_per_epoch is None:
            t, total = min(step, max_steps), max_steps
        else:
            t, total = min(step, max_steps) // steps_per_epoch, max(1, math.ceil(max_steps / steps_per_epoch))
        return round(0.5 * (1.0 + math.cos(math.pi * t / total)), 12)

    return factor


class CosineLR(Callback):
    """Puts :func:`cosine_decay` in place of the loop's LR factor on every optimizer of the task."""

    def __init__(self, steps_per_epoch: int | None = None) -> None:
        self.steps_per_epoch = steps_per_epoch

    def on_fit_start(self, state: TrainState) -> None:
        factor = cosine_decay(state.max_steps, self.steps_per_epoch)
        for sched in state.schedulers.values():
            if not hasattr(sched, "lr_lambdas"):
                raise ConfigError(f"CosineLR needs LambdaLR schedulers, got {type(sched).__name__}")
            sched.lr_lambdas = [factor] * len(sched.lr_lambdas)
            # the current step's rate too (a resumed run continues on the cosine)
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * factor(state.step)
