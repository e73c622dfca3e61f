"""Mixed precision for the training loop: ``fp32`` | ``bf16`` | ``fp16`` through ``torch.autocast``.

The loop runs each ``training_step`` under :meth:`Precision.autocast`: convolutions and matrix
products run in the lower precision, while autocast keeps its fp32 operations (norms, reductions,
softmax) in fp32 and the shared GAN losses cast their inputs to fp32 (``training/losses.py``).
Weights, optimizer state and checkpoints stay fp32, so a checkpoint resumes in any precision.

``fp16`` needs loss scaling (``torch.amp.GradScaler``, CUDA only): a Task then backpropagates through
:func:`backward` (``backward(loss, optimizers["G"])``) so the loss is scaled, and the loop unscales,
skips steps with overflowing gradients and adapts the scale. ``bf16`` has fp32's range and needs
no scaling; it works on CPU and on CUDA devices that support it.

Example:
    >>> fit(task, data, "runs/x", batch_size=4, max_steps=1000, device="cuda", precision="bf16")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def backward(loss: torch.Tensor, optimizer: Any) -> None:
    """``loss.backward()``, scaled when ``optimizer`` is the loop's fp16 wrapper (a no-op change otherwise)."""
    scaled = getattr(optimizer, "backward", None)
    if scaled is None:
        loss.backward()
    else:
        scaled(loss)


class Precision:
    """The numeric precision of one run on one device; :func:`resolve_precision` makes one."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name = name
        self.device = device
        self.dtype = _DTYPES.get(name)
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
        self.scaled_backward = False  # set by a wrapper's backward(), cleared before each step
        self.stepped = False  # an optimizer stepped through the scaler in this training step

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to this precision's dtype (nothing at all for fp32, so fp32 runs are unchanged)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield

    def wrap(self, optimizers: Mapping[str, Any], raw: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """The optimizers handed to ``training_step``: fp16 wraps each so backward and step are scaled."""
        if self.scaler is None:
            return dict(optimizers)
        return {k: ScaledOptimizer(raw[k], optimizers[k], self) for k in optimizers}

    def begin_step(self) -> None:
        self.scaled_backward = self.stepped = False

    def end_step(self) -> None:
        # The scale adapts once per training step, after every optimizer's step (update() refuses
        # to run when no optimizer stepped through the scaler).
        if self.scaler is not None and self.stepped:
            self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The GradScaler's state (scale, growth tracker) for the checkpoint; None without a scaler."""
        return None if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


class ScaledOptimizer:
    """fp16: ``backward`` scales the loss; ``step`` averages gradients (under torchrun), then steps via the scaler.

    Averaging the still-scaled gradients before the scaler's overflow check makes every rank see the
    same gradients, so all ranks skip (or take) the same steps.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, outer: Any, precision: Precision) -> None:
        self.optimizer = optimizer
        self.outer = outer  # the optimizer as the loop would hand it out (gradient-averaging under torchrun)
        self.precision = precision

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def backward(self, loss: torch.Tensor) -> None:
        assert self.precision.scaler is not None
        self.precision.scaled_backward = True
        self.precision.scaler.scale(loss).backward()

    def step(self, closure=None):  # noqa: ANN001 - the torch signature
        if not self.precision.scaled_backward:
            raise ConfigError(
                "precision fp16: this Task calls loss.backward() itself, so its loss is not scaled; "
                "it must call gancompress.training.precision.backward(loss, optimizer) (or use bf16)"
            )
        average = getattr(self.outer, "average_gradients", None)
        if average is not None:
            average()
        assert self.precision.scaler is not None
        self.precision.stepped = True
        return self.precision.scaler.step(self.optimizer)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Check ``name`` against ``device``: every refusal is a :class:`ConfigError` naming the option."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "fp16" and device.type != "cuda":
        # CPUs have no fast fp16 arithmetic, and bf16 gives the same memory saving without loss scaling.
        raise ConfigError(
            f"precision fp16 needs a CUDA device (fp16 with loss scaling is the GPU path); the device is "
            f"{device}: use precision bf16 (or fp32) on {device.type}"
        )
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision bf16: {torch.cuda.get_device_name(device)} has no bf16; use fp16")
    if name == "bf16" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"precision bf16 is supported on cpu and cuda, not on {device.type}")
    return Precision(name, device)
