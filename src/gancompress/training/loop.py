"""The one training loop: every teacher and every compression method trains through :func:`fit`.

A Task (the :class:`~gancompress.training.task.Task` protocol) is an ``nn.Module`` owning its
trained networks, with ``configure_optimizers()``, ``training_step(batch, step, optimizers)``,
``sample(batch)`` and ``generator()``. The loop owns the data order, the learning-rate schedule, the
precision and data-parallel scale-out; everything else it does at a step's end is a callback
(``training/hooks.py``): logs, sample grids, checkpoints with exact resume, non-finite rollback and
the progress bar.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from ..errors import ConfigError
from . import distributed as D
from .callbacks import Callback, TrainState
from .checkpoint import latest_checkpoint, list_checkpoints
from .hooks import (
    Checkpointer,
    CsvLogger,
    NonFiniteGuard,
    NonFiniteLossError,
    ProgressBar,
    SampleGrids,
    TensorBoardLogger,
    announce_resume,
)
from .precision import Precision, resolve_precision
from .sampler import PositionedDataset, SeededSampler
from .state import preserved_rng, seed_everything
from .task import Task, check_task

NonFinitePolicy = Literal["stop", "rollback"]

__all__ = ["NonFiniteLossError", "default_sample_batch", "fit", "linear_decay"]


def linear_decay(max_steps: int, decay_from: int | None):
    """LR factor: 1 until ``decay_from``, then linear to 0 at ``max_steps`` (constant when None).

    Example:
        >>> f = linear_decay(100, 50); f(0), f(50), f(75), f(100)
        (1.0, 1.0, 0.5, 0.0)
    """

    def factor(step: int) -> float:
        if decay_from is None or step < decay_from:
            return 1.0
        return max(0.0, 1.0 - (step - decay_from) / max(1, max_steps - decay_from))

    return factor


def default_sample_batch(dataset: Dataset, count: int, seed: int) -> Any:
    """The first ``count`` items of ``dataset`` (transforms drawn from a fixed seed), collated."""
    n = min(count, len(dataset))  # type: ignore[arg-type]
    items = []
    for i in range(n):
        with preserved_rng(seed=seed + i):
            items.append(dataset[i])
    return default_collate(items)


def _check_args(
    batch_size: int,
    max_steps: int,
    decay_from: int | None,
    checkpoint_every: int,
    keep_last: int,
    on_nonfinite: str,
    lr_drop: float,
):
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if max_steps < 0:
        raise ConfigError(f"max_steps must be non-negative, got {max_steps}")
    if decay_from is not None and decay_from < 0:
        # decay_from beyond max_steps is allowed: a run capped at fewer steps keeps a constant LR.
        raise ConfigError(f"decay_from must be non-negative, got {decay_from}")
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    if keep_last < 1:
        raise ConfigError(f"keep_last must be at least 1, got {keep_last}")
    if on_nonfinite not in ("stop", "rollback"):
        raise ConfigError(f"on_nonfinite must be 'stop' or 'rollback', got {on_nonfinite!r}")
    if not 0 < lr_drop < 1:
        raise ConfigError(f"lr_drop must lie in (0, 1), got {lr_drop}")


def fit(
    task: Task,
    dataset: Dataset,
    run_dir: str | Path,
    *,
    batch_size: int,
    num_workers: int = 0,
    max_steps: int,
    decay_from: int | None = None,
    checkpoint_every: int = 1000,
    log_every: int = 50,
    sample_every: int | None = None,
    resume: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    sample_batch: Any = None,
    num_samples: int = 4,
    keep_last: int = 3,
    on_nonfinite: NonFinitePolicy = "stop",
    lr_drop: float = 0.5,
    max_rollbacks: int = 3,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    tensorboard: bool = True,
    precision: str = "fp32",
    stage: str | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
) -> dict[str, Any]:
    """Train ``task`` on ``dataset`` for ``max_steps`` optimisation steps; resumable from ``run_dir``.

    ``batch_size`` is per process; under torchrun the global batch is ``batch_size * WORLD_SIZE``.
    The learning rate of every optimizer is constant until ``decay_from``, then decays linearly to
    zero at ``max_steps``. Checkpoints go to ``run_dir/checkpoints`` every ``checkpoint_every`` steps
    and at the end (the newest ``keep_last`` are kept); with ``resume`` the newest complete one is
    loaded ("resuming from step N" on stderr) and training continues exactly as if never interrupted.
    A NaN or infinite loss stops the run (``on_nonfinite="stop"``) or rolls back to the last
    checkpoint with the learning rates times ``lr_drop`` (``"rollback"``, at most ``max_rollbacks``
    times). ``precision`` is ``fp32``, ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA, with loss scaling):
    see :mod:`gancompress.training.precision`. ``stage`` names the progress bar (``"supernet 1/4"``);
    ``channels_last`` (default: on CUDA) trains in the channels-last memory format; ``compile``
    compiles the Task's generator and discriminator with ``torch.compile``.

    Example:
        >>> result = fit(task, train_set, "runs/teacher", batch_size=1, max_steps=20000, decay_from=10000)
        >>> result["step"], result["last_checkpoint"]
    """
    _check_args(batch_size, max_steps, decay_from, checkpoint_every, keep_last, on_nonfinite, lr_drop)
    check_task(task)
    run_dir = Path(run_dir)
    ctx, dev = D.setup(str(device))
    prec = resolve_precision(precision, dev)
    _prepare_run_dir(run_dir, resume, ctx)
    channels_last = dev.type == "cuda" if channels_last is None else channels_last
    state, step_optimizers = _build_state(task, run_dir, max_steps, decay_from, dev, ctx, prec, channels_last)
    if compile:
        _compile(task)
    checkpointer = Checkpointer(run_dir / "checkpoints", checkpoint_every, keep_last, callbacks, prec)
    guard = NonFiniteGuard(on_nonfinite, lr_drop, max_rollbacks, checkpointer)

    seed_everything(seed)
    resumed_from = _resume(state, checkpointer) if resume else None
    if sample_batch is None and num_samples > 0:
        sample_batch = default_sample_batch(dataset, num_samples, seed)
    every = sample_every or checkpoint_every
    hooks = [*_loggers(run_dir, ctx, sample_batch, every, tensorboard), checkpointer, guard]
    if ctx.is_main and progress:
        hooks.append(ProgressBar(stage))  # last: the bar counts a step once everything else is done

    def step_fn(batch: Any) -> tuple[dict[str, float], bool]:
        return _train_step(state, batch, step_optimizers, prec, channels_last)

    loader_args = (dataset, batch_size, num_workers, seed, ctx, dev)
    start_step = state.step
    try:
        for cb in hooks:
            cb.on_fit_start(state)
        D.barrier(ctx)
        for cb in callbacks:
            cb.on_fit_start(state)
        t_start = time.perf_counter()
        last_logs = _train(state, loader_args, step_fn, hooks, callbacks, guard, log_every)
    finally:
        for cb in [*hooks, *callbacks]:
            cb.on_teardown(state)
    checkpointer.finish(state)
    wall = time.perf_counter() - t_start
    result = _result(state, start_step, resumed_from, wall, batch_size * ctx.world_size, last_logs)
    for cb in callbacks:
        cb.on_fit_end(state, result)
    return result


# -- pieces ---------------------------------------------------------------------------------------
def _prepare_run_dir(run_dir: Path, resume: bool, ctx: D.DistContext) -> None:
    if ctx.is_main:
        from ..utils.files import check_writable

        check_writable(run_dir)
        if not resume:
            # A fresh run must never later resume from an older run's checkpoints in the same folder.
            for _, old in list_checkpoints(run_dir / "checkpoints"):
                shutil.rmtree(old, ignore_errors=True)
    D.barrier(ctx)


def _build_state(
    task: Any,
    run_dir: Path,
    max_steps: int,
    decay_from: int | None,
    dev: torch.device,
    ctx: D.DistContext,
    prec: Precision,
    channels_last: bool,
) -> tuple[TrainState, Mapping[str, Any]]:
    """The Task on its device, its optimizers and LR schedules, and the optimizers a step gets."""
    task.to(dev)
    if channels_last:
        task.to(memory_format=torch.channels_last)
    if ctx.enabled:
        D.broadcast_module(task)
    optimizers = dict(task.configure_optimizers())
    if not optimizers:
        raise ConfigError(f"{type(task).__name__}.configure_optimizers() returned no optimizer")
    factor = linear_decay(max_steps, decay_from)
    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in optimizers.items()}
    outer: Mapping[str, Any] = (
        {k: D.GradientAveragingOptimizer(o, ctx.world_size) for k, o in optimizers.items()}
        if ctx.enabled
        else optimizers
    )
    state = TrainState(task, optimizers, schedulers, run_dir, max_steps, dev, ctx)
    return state, prec.wrap(outer, optimizers)


def _loggers(
    run_dir: Path, ctx: D.DistContext, sample_batch: Any, sample_every: int, tensorboard: bool
) -> list[Callback]:
    """What rank 0 writes besides checkpoints: the CSV log, TensorBoard and the sample grids."""
    if not ctx.is_main:
        return []
    hooks: list[Callback] = [CsvLogger(run_dir / "logs" / "train.csv")]
    board = TensorBoardLogger(run_dir / "logs" / "tensorboard") if tensorboard else None
    if board is not None:
        hooks.append(board)
    if sample_batch is not None:
        hooks.append(SampleGrids(sample_batch, sample_every, board))
    return hooks


def _compile(task: Any) -> None:
    # In place (nn.Module.compile): the state dict keeps its keys, so checkpoints are unchanged.
    for getter in ("generator", "discriminator"):
        try:
            net = getattr(task, getter)() if callable(getattr(task, getter, None)) else None
        except NotImplementedError:
            net = None
        if isinstance(net, nn.Module):
            net.compile()


def _resume(state: TrainState, checkpointer: Checkpointer) -> str | None:
    path = latest_checkpoint(checkpointer.root)
    if path is None:
        return None
    checkpointer.restore(state, path)
    state.last_checkpoint = path
    announce_resume(state, path)
    return str(path)


def _train(
    state: TrainState,
    loader_args: tuple,
    step_fn: Callable[[Any], tuple[dict[str, float], bool]],
    hooks: Sequence[Callback],
    callbacks: Sequence[Callback],
    guard: NonFiniteGuard,
    log_every: int,
) -> dict[str, float]:
    """Epochs of steps until ``max_steps``; a non-finite step hands over to ``guard`` (raise or roll back)."""
    dataset, batch_size, num_workers, seed, ctx, dev = loader_args
    global_batch = batch_size * ctx.world_size
    last_logs: dict[str, float] = {}
    while state.step < state.max_steps:
        loader = _loader(dataset, batch_size, num_workers, seed, state.step, state.max_steps, ctx, dev)
        window_t, window_steps = time.perf_counter(), 0
        failed = None
        for batch in loader:
            logs, finite = step_fn(batch)
            if not finite:
                failed = logs
                break
            state.step += 1
            window_steps += 1
            last_logs = logs
            for cb in callbacks:
                cb.on_step_end(state, logs)
            if ctx.is_main and (state.step % log_every == 0 or state.step == state.max_steps):
                ips = global_batch * window_steps / max(time.perf_counter() - window_t, 1e-9)
                row = _row(state, logs, ips)
                for cb in [*hooks, *callbacks]:
                    cb.on_log(state, logs, row)
                window_t, window_steps = time.perf_counter(), 0
            for cb in hooks:
                cb.on_step_end(state, logs)
        if failed is not None:
            guard.recover(state, failed)
            for cb in [*hooks, *callbacks]:
                cb.on_rollback(state)
    return last_logs


def _train_step(
    state: TrainState, batch: Any, optimizers: Mapping[str, Any], prec: Precision, channels_last: bool
) -> tuple[dict[str, float], bool]:
    """One ``training_step`` under the run's precision; (logs, whether every loss is finite on every rank)."""
    if channels_last:
        batch = _to_device(batch, state.device)
    state.task.train()
    prec.begin_step()
    with prec.autocast():
        logs = dict(state.task.training_step(batch, state.step, optimizers))
    prec.end_step()
    finite = all(math.isfinite(float(v)) for v in logs.values())
    if not D.all_true(finite, state.ctx, state.device):
        return logs, False
    for s in state.schedulers.values():
        s.step()
    if state.ctx.enabled:
        D.broadcast_module(state.task, buffers_only=True)
    return logs, True


def _to_device(batch: Any, dev: torch.device) -> Any:
    """The batch on ``dev``, image tensors in the channels-last memory format."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 4 and batch.is_floating_point():
            return batch.to(dev, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(dev, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, dev) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, dev) for v in batch)
    return batch


def _row(state: TrainState, logs: dict[str, float], ips: float) -> dict[str, Any]:
    lrs = {f"lr_{k}": o.param_groups[0]["lr"] for k, o in state.optimizers.items()}
    return {"step": state.step, **{k: float(v) for k, v in logs.items()}, **lrs, "images_per_s": ips}


def _result(
    state: TrainState,
    start_step: int,
    resumed_from: str | None,
    wall: float,
    global_batch: int,
    last_logs: dict[str, float],
) -> dict[str, Any]:
    trained = state.step - start_step
    return {
        "run_dir": str(state.run_dir),
        "step": state.step,
        "start_step": start_step,
        "resumed_from": resumed_from,
        "last_checkpoint": str(state.last_checkpoint) if state.last_checkpoint else None,
        "wall_s": wall,
        "images_per_s": global_batch * trained / wall if trained and wall > 0 else None,
        "world_size": state.ctx.world_size,
        "global_batch": global_batch,
        "lr_scale": state.lr_scale,
        "rollbacks": state.extra.get("rollbacks", []),
        "logs": last_logs,
    }


def _loader(dataset, batch_size, num_workers, seed, start, max_steps, ctx, dev) -> DataLoader:
    sampler = SeededSampler(len(dataset), batch_size, seed, start, max_steps, ctx.rank, ctx.world_size)
    return DataLoader(
        PositionedDataset(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        # A private generator: creating the loader must not draw from the training RNG stream.
        generator=torch.Generator().manual_seed(seed),
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )
