"""The one training loop (:func:`fit`), its hooks, checkpoints and the GAN losses.

Example:
    >>> from gancompress.training import fit
    >>> fit(task, dataset, "runs/teacher", batch_size=1, max_steps=20000, decay_from=10000)
"""

from .callbacks import Callback, TrainState
from .checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .loop import NonFiniteLossError, fit, linear_decay

__all__ = [
    "Callback",
    "NonFiniteLossError",
    "TrainState",
    "fit",
    "latest_checkpoint",
    "linear_decay",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]
