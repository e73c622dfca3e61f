"""The one training loop (:func:`fit`), its hooks, checkpoints and the GAN losses.

Example:
    >>> from gancompress.training import fit
    >>> fit(task, dataset, "runs/teacher", batch_size=1, max_steps=20000, decay_from=10000)
"""

from .callbacks import Callback, TrainState
from .checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .loop import NonFiniteLossError, fit, linear_decay
from .precision import PRECISIONS, backward
from .task import Task

__all__ = [
    "Callback",
    "NonFiniteLossError",
    "PRECISIONS",
    "Task",
    "TrainState",
    "backward",
    "fit",
    "latest_checkpoint",
    "linear_decay",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]
