"""The Task interface of :func:`gancompress.training.fit`, as a ``typing.Protocol``.

A Task is an ``nn.Module`` that owns the networks it trains (their weights are its state dict, which
checkpoints hold) and knows its own objective; the loop owns everything around the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ConfigError


@runtime_checkable
class Task(Protocol):
    """What :func:`~gancompress.training.fit` calls on a Task (besides ``nn.Module``'s own methods).

    Example:
        >>> class MyTask(nn.Module):
        ...     def configure_optimizers(self): return {"G": torch.optim.Adam(self.g.parameters())}
        ...     def training_step(self, batch, step, optimizers): ...; return {"loss_g": 0.1}
        ...     def sample(self, batch): return torch.cat([batch["A"], self.g(batch["A"])], 3)
        ...     def generator(self): return self.g
        >>> isinstance(MyTask(), Task)
        True
    """

    def configure_optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """Name → optimizer; the names key the LR schedulers, the logs (``lr_G``) and the checkpoint."""
        ...

    def training_step(self, batch: Any, step: int, optimizers: Mapping[str, Any]) -> Mapping[str, float]:
        """One optimisation step (zero_grad, backward, ``optimizers[k].step()``); returns the losses to log.

        Backpropagate with :func:`gancompress.training.precision.backward` to train in fp16 too.
        """
        ...

    def sample(self, batch: Any) -> torch.Tensor:
        """(N, C, H, W) images in [-1, 1] for the sample grid (called without gradients)."""
        ...

    def generator(self) -> nn.Module:
        """The network the run produces (compiled with ``compile=True``, with the discriminator if any)."""
        ...


def check_task(task: Any) -> None:
    """A Task missing part of the interface fails here, naming what it lacks."""
    missing = [
        name for name in ("configure_optimizers", "training_step") if not callable(getattr(task, name, None))
    ]
    if not isinstance(task, nn.Module):
        missing.insert(0, "nn.Module as its base class")
    if missing:
        raise ConfigError(f"{type(task).__name__} is not a training Task: it lacks {', '.join(missing)}")
