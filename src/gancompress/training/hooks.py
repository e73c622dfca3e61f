"""The loop's own plug points, as callbacks: logs, sample grids, checkpoints, non-finite rollback, progress.

:func:`gancompress.training.fit` builds these from its keywords; they use the same hooks as a
user's :class:`~gancompress.training.Callback`, but their state is the checkpoint itself, so nothing of
theirs is stored under ``callbacks`` in ``state.json``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, GanCompressError
from . import distributed as D
from .callbacks import Callback, TrainState
from .checkpoint import load_checkpoint, load_model_state, prune_checkpoints, save_checkpoint, step_dir
from .logs import CsvLog, save_grid
from .precision import Precision
from .state import preserved_rng, rng_state, set_rng_state


class NonFiniteLossError(GanCompressError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


def _due(step: int, every: int, max_steps: int) -> bool:
    return step % every == 0 or step == max_steps


class CsvLogger(Callback):
    """``logs/train.csv``: a resumed run drops the rows written after its checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log: CsvLog | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.log = CsvLog(self.path, state.step)

    def on_log(self, state: TrainState, logs: dict[str, float], row: dict[str, float]) -> None:
        assert self.log is not None
        self.log.write(row)


class TensorBoardLogger(Callback):
    """``logs/tensorboard``: the logged scalars under ``train/``, and the sample grids."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: Any = None

    def on_fit_start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run drops the events written after its checkpoint, as the CSV does.
        self.writer = SummaryWriter(str(self.folder), purge_step=state.step)

    def on_log(self, state: TrainState, logs: dict[str, float], row: dict[str, float]) -> None:
        for k, v in row.items():
            if k != "step":
                self.writer.add_scalar(f"train/{k}", v, state.step)

    def add_image(self, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        arr = np.asarray(Image.open(path).convert("RGB"))
        self.writer.add_image("samples", arr, step, dataformats="HWC")

    def on_teardown(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.close()


class SampleGrids(Callback):
    """``samples/step_XXXXXXX.png`` and ``samples/latest.png`` of ``batch`` every ``every`` steps."""

    def __init__(self, batch: Any, every: int, tensorboard: TensorBoardLogger | None = None) -> None:
        self.batch, self.every, self.tensorboard = batch, every, tensorboard

    def on_step_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if not _due(state.step, self.every, state.max_steps):
            return
        # Sampling draws no numbers from the training stream, so the sampling cadence never changes a run.
        with preserved_rng(), torch.no_grad():
            images = state.task.sample(self.batch)
        folder = state.run_dir / "samples"
        path = save_grid(folder / f"step_{state.step:07d}.png", images)
        save_grid(folder / "latest.png", images)
        if self.tensorboard is not None:
            self.tensorboard.add_image(path, state.step)


class ProgressBar(Callback):
    """A tqdm bar named after the stage (``supernet 1/4``, ``fine-tune``), with the last losses and img/s."""

    def __init__(self, desc: str | None) -> None:
        self.desc = desc
        self.bar: Any = None

    def on_fit_start(self, state: TrainState) -> None:
        if state.step < state.max_steps:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps,
                initial=state.step,
                desc=self.desc,
                unit="step",
                dynamic_ncols=True,
                mininterval=1.0,
            )

    def on_log(self, state: TrainState, logs: dict[str, float], row: dict[str, float]) -> None:
        if self.bar is not None:
            short = {k.removeprefix("loss_"): f"{float(v):.3g}" for k, v in logs.items()}
            self.bar.set_postfix(short | {"img/s": f"{row['images_per_s']:.1f}"}, refresh=False)

    def on_step_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_rollback(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.n = state.step
            self.bar.refresh()

    def on_teardown(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()


class Checkpointer(Callback):
    """Every ``every`` steps and at the end: the Task's weights and the whole training state, atomically.

    ``user`` are the run's own callbacks, whose ``state_dict`` is stored under ``callbacks``.
    """

    def __init__(
        self, root: Path, every: int, keep_last: int, user: Sequence[Callback], precision: Precision
    ) -> None:
        self.root, self.every, self.keep_last = root, every, keep_last
        self.user, self.precision = list(user), precision

    def on_step_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if _due(state.step, self.every, state.max_steps):
            self.save(state)

    def finish(self, state: TrainState) -> None:
        """The final checkpoint, unless the last step already wrote it."""
        if state.last_checkpoint != step_dir(self.root, state.step):
            self.save(state)

    def training_state(self, state: TrainState) -> dict[str, Any]:
        out = {
            "step": state.step,
            "optimizers": {k: o.state_dict() for k, o in state.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in state.schedulers.items()},
            "rng": rng_state(),
            "lr_scale": state.lr_scale,
            "world_size": state.ctx.world_size,
            "callbacks": {cb.name: cb.state_dict() for cb in self.user},
        }
        scaler = self.precision.state_dict()
        if scaler is not None:  # fp16 only: fp32 and bf16 checkpoints keep the plain layout
            out["grad_scaler"] = scaler
        return out

    def save(self, state: TrainState) -> Path:
        # Rank 0 writes; every rank waits for it and records the same path (all ranks take the same
        # branches afterwards, e.g. a rollback, so their collective calls stay matched).
        path = step_dir(self.root, state.step)
        if state.ctx.is_main:
            save_checkpoint(self.root, state.step, state.task, self.training_state(state))
            prune_checkpoints(self.root, self.keep_last, protect=(path,))
            for cb in self.user:
                cb.on_checkpoint(state, path)
        D.barrier(state.ctx)
        state.last_checkpoint = path
        return path

    def restore(self, state: TrainState, path: Path) -> None:
        """Load checkpoint ``path`` into the Task, optimizers, schedulers, RNGs and callbacks."""
        # Tensors load to the CPU first and are copied into the Task where it lives: a checkpoint
        # written on one device resumes on any other.
        ckpt = load_checkpoint(path)
        load_model_state(state.task, ckpt.model, str(path / "model.safetensors"))
        try:
            self._restore_training_state(state, path, ckpt.state, ckpt.step)
        except CheckpointError:
            raise
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            IndexError,
            RuntimeError,
            ArithmeticError,
        ) as exc:
            # A damaged or foreign state.json: name the file rather than fail deep inside torch or random.
            raise CheckpointError(
                f"{path / 'state.json'} does not fit this run ({type(exc).__name__}: {exc})"
            ) from None

    def _restore_training_state(
        self, state: TrainState, path: Path, saved: dict[str, Any], step: int
    ) -> None:
        missing = sorted(set(state.optimizers) ^ set(saved.get("optimizers", {})))
        if missing:
            raise CheckpointError(f"{path}: optimizers {missing} differ between the checkpoint and this task")
        for k, o in state.optimizers.items():
            try:
                o.load_state_dict(saved["optimizers"][k])
            except (ValueError, KeyError, RuntimeError) as exc:
                raise CheckpointError(f"{path}: optimizer {k!r} does not fit this task ({exc})") from None
        for k, s in state.schedulers.items():
            s.load_state_dict(saved["schedulers"][k])
            # The schedule's length may have changed since (a longer run): recompute from the new lambda.
        set_rng_state(saved["rng"])
        state.step = step
        state.lr_scale = float(saved.get("lr_scale", 1.0))
        self.precision.load_state_dict(saved.get("grad_scaler"))
        for cb in self.user:
            if cb.name in saved.get("callbacks", {}):
                cb.load_state_dict(saved["callbacks"][cb.name])
        if int(saved.get("world_size", 1)) != state.ctx.world_size and state.ctx.is_main:
            print(
                f"note: {path} was written with {saved.get('world_size')} processes, resuming with "
                f"{state.ctx.world_size}: the data order from here on differs from the original run",
                flush=True,
            )


class NonFiniteGuard(Callback):
    """A NaN or infinite loss stops the run, or rolls it back to the last checkpoint with lower LRs.

    ``policy="rollback"`` multiplies every learning rate by ``lr_drop`` per rollback (cumulatively),
    at most ``max_rollbacks`` times; the run then stops as with ``"stop"``.
    """

    def __init__(self, policy: str, lr_drop: float, max_rollbacks: int, checkpointer: Checkpointer) -> None:
        self.policy, self.lr_drop, self.max_rollbacks = policy, lr_drop, max_rollbacks
        self.checkpointer = checkpointer
        self.rollbacks = 0

    def on_fit_start(self, state: TrainState) -> None:
        if self.policy == "rollback" and state.last_checkpoint is None:
            self.checkpointer.save(state)  # something to roll back to

    def recover(self, state: TrainState, logs: dict[str, float]) -> None:
        """Called with the logs of the failed step (``state.step``): raise, or roll back."""
        step = state.step
        bad = {k: float(v) for k, v in logs.items() if not math.isfinite(float(v))}
        last = state.last_checkpoint
        if self.policy == "stop" or last is None or self.rollbacks >= self.max_rollbacks:
            where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            tried = f" after {self.rollbacks} rollbacks" if self.rollbacks else ""
            hint = "Lower the learning rate"
            if self.policy == "stop":  # suggest the automatic rollback only to a run not using it
                hint += (
                    ", or set on_nonfinite to rollback to roll back and lower it automatically "
                    "(--set train.on_nonfinite=rollback; for compress, the stage's, e.g. "
                    "--set supernet.train.on_nonfinite=rollback)"
                )
            raise NonFiniteLossError(f"non-finite loss at step {step}{tried} ({bad}); {where}. {hint}.")
        self.rollbacks += 1
        target = state.lr_scale * self.lr_drop  # cumulative over rollbacks, whatever the checkpoint held
        self.checkpointer.restore(state, last)
        _scale_lr(state, target / state.lr_scale)
        state.lr_scale = target
        msg = (
            f"non-finite loss at step {step} ({bad}): rolled back to {last} "
            f"(step {state.step}) with learning rates x{state.lr_scale:g}"
        )
        state.extra.setdefault("rollbacks", []).append(msg)
        if state.ctx.is_main:
            print(msg, flush=True)


def _scale_lr(state: TrainState, factor: float) -> None:
    for k, s in state.schedulers.items():
        s.base_lrs = [lr * factor for lr in s.base_lrs]
        for group in state.optimizers[k].param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor


def announce_resume(state: TrainState, path: Path) -> None:
    """``resuming from step N`` on stderr (stdout stays free for a command's JSON)."""
    if state.ctx.is_main:
        print(f"resuming from step {state.step} ({path})", file=sys.stderr, flush=True)
