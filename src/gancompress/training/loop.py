"""The one training loop: every teacher and every compression method trains through :func:`fit`.

A Task (see ``methods/gan_compression/distill.py:DistillTask``) is an ``nn.Module`` owning its
trained networks, with ``configure_optimizers()``, ``training_step(batch, step, optimizers)``,
``sample(batch)`` and ``generator()``. The loop owns everything around the step: data order, the
learning-rate schedule, checkpoints and exact resume, logs, sample grids, non-finite detection and
data-parallel scale-out.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from ..errors import ConfigError, GanCompressError
from . import distributed as D
from .callbacks import Callback, TrainState
from .checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
    save_checkpoint,
    step_dir,
)
from .logs import CsvLog, save_grid
from .sampler import PositionedDataset, SeededSampler
from .state import preserved_rng, rng_state, seed_everything, set_rng_state

NonFinitePolicy = Literal["stop", "rollback"]


class NonFiniteLossError(GanCompressError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


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
    batch_size: int, max_steps: int, decay_from: int | None, checkpoint_every: int, keep_last: int
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


def fit(
    task: nn.Module,
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
) -> dict[str, Any]:
    """Train ``task`` on ``dataset`` for ``max_steps`` optimisation steps; resumable from ``run_dir``.

    ``batch_size`` is per process; under torchrun the global batch is ``batch_size * WORLD_SIZE``.
    The learning rate of every optimizer is constant until ``decay_from``, then decays linearly to
    zero at ``max_steps``. Checkpoints go to ``run_dir/checkpoints`` every ``checkpoint_every`` steps
    and at the end (the newest ``keep_last`` are kept); with ``resume`` the newest complete one is
    loaded and training continues exactly as if never interrupted. A NaN or infinite loss stops the
    run (``on_nonfinite="stop"``) or rolls back to the last checkpoint with the learning rates times
    ``lr_drop`` (``"rollback"``, at most ``max_rollbacks`` times).

    Example:
        >>> result = fit(task, train_set, "runs/teacher", batch_size=1, max_steps=20000, decay_from=10000)
        >>> result["step"], result["last_checkpoint"]
    """
    _check_args(batch_size, max_steps, decay_from, checkpoint_every, keep_last)
    if precision != "fp32":
        raise ConfigError(f"precision {precision!r} is not supported by this training loop; use fp32")
    if on_nonfinite not in ("stop", "rollback"):
        raise ConfigError(f"on_nonfinite must be 'stop' or 'rollback', got {on_nonfinite!r}")
    if not 0 < lr_drop < 1:
        raise ConfigError(f"lr_drop must lie in (0, 1), got {lr_drop}")
    run_dir = Path(run_dir)
    ckpt_root = run_dir / "checkpoints"
    ctx, dev = D.setup(str(device))
    sample_every = sample_every or checkpoint_every

    if ctx.is_main:
        from ..utils.files import check_writable

        check_writable(run_dir)
        if not resume:
            # A fresh run must never later resume from an older run's checkpoints in the same folder.
            for _, old in list_checkpoints(ckpt_root):
                shutil.rmtree(old, ignore_errors=True)
    D.barrier(ctx)

    task.to(dev)
    if ctx.enabled:
        D.broadcast_module(task)
    optimizers = dict(task.configure_optimizers())
    if not optimizers:
        raise ConfigError(f"{type(task).__name__}.configure_optimizers() returned no optimizer")
    factor = linear_decay(max_steps, decay_from)
    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in optimizers.items()}
    step_optimizers: Mapping[str, Any] = (
        {k: D.GradientAveragingOptimizer(o, ctx.world_size) for k, o in optimizers.items()}
        if ctx.enabled
        else optimizers
    )
    state = TrainState(task, optimizers, schedulers, run_dir, max_steps, dev, ctx)

    seed_everything(seed)
    resumed_from = None
    if resume:
        path = latest_checkpoint(ckpt_root)
        if path is not None:
            _restore(state, path, callbacks)
            resumed_from = str(path)
            state.last_checkpoint = path
    if sample_batch is None and num_samples > 0:
        sample_batch = default_sample_batch(dataset, num_samples, seed)

    writer = None
    csv_log = None
    if ctx.is_main:
        csv_log = CsvLog(run_dir / "logs" / "train.csv", state.step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "logs" / "tensorboard"), purge_step=state.step)
    if on_nonfinite == "rollback" and state.last_checkpoint is None:
        _checkpoint(state, ckpt_root, keep_last, callbacks)  # something to roll back to
    D.barrier(ctx)
    for cb in callbacks:
        cb.on_fit_start(state)

    global_batch = batch_size * ctx.world_size
    start_step = state.step
    rollbacks = 0
    last_logs: dict[str, float] = {}
    t_start = time.perf_counter()
    bar = None
    if ctx.is_main and progress and state.step < max_steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, initial=state.step, unit="step", dynamic_ncols=True, mininterval=1.0)
    try:
        while state.step < max_steps:
            loader = _loader(dataset, batch_size, num_workers, seed, state.step, max_steps, ctx, dev)
            window_t, window_steps = time.perf_counter(), 0
            diverged = False
            for batch in loader:
                step = state.step
                task.train()
                logs = dict(task.training_step(batch, step, step_optimizers))
                finite = all(math.isfinite(float(v)) for v in logs.values())
                if not D.all_true(finite, ctx, dev):
                    diverged = True
                    break
                for s in schedulers.values():
                    s.step()
                if ctx.enabled:
                    D.broadcast_module(task, buffers_only=True)
                state.step = step + 1
                window_steps += 1
                last_logs = logs
                for cb in callbacks:
                    cb.on_step_end(state, logs)
                if state.step % log_every == 0 or state.step == max_steps:
                    elapsed = time.perf_counter() - window_t
                    ips = global_batch * window_steps / max(elapsed, 1e-9)
                    _log(state, logs, ips, csv_log, writer, bar)
                    window_t, window_steps = time.perf_counter(), 0
                if (
                    ctx.is_main
                    and sample_batch is not None
                    and (state.step % sample_every == 0 or state.step == max_steps)
                ):
                    _sample(task, sample_batch, run_dir, state.step, writer)
                if state.step % checkpoint_every == 0 or state.step == max_steps:
                    _checkpoint(state, ckpt_root, keep_last, callbacks)
                if bar is not None:
                    bar.update(1)
            if not diverged:
                continue
            bad = {k: float(v) for k, v in logs.items() if not math.isfinite(float(v))}
            last = state.last_checkpoint
            if on_nonfinite == "stop" or last is None or rollbacks >= max_rollbacks:
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
                tried = f" after {rollbacks} rollbacks" if rollbacks else ""
                hint = "Lower the learning rate"
                if on_nonfinite == "stop":  # suggest the automatic rollback only to a run not using it
                    hint += (
                        ", or set on_nonfinite to rollback to roll back and lower it automatically "
                        "(--set train.on_nonfinite=rollback; for compress, the stage's, e.g. "
                        "--set supernet.train.on_nonfinite=rollback)"
                    )
                raise NonFiniteLossError(f"non-finite loss at step {step}{tried} ({bad}); {where}. {hint}.")
            rollbacks += 1
            target = state.lr_scale * lr_drop  # cumulative over rollbacks, whatever the checkpoint held
            _restore(state, last, callbacks)
            _scale_lr(state, target / state.lr_scale)
            state.lr_scale = target
            msg = (
                f"non-finite loss at step {step} ({bad}): rolled back to {last} "
                f"(step {state.step}) with learning rates x{state.lr_scale:g}"
            )
            state.extra.setdefault("rollbacks", []).append(msg)
            if ctx.is_main:
                print(msg, flush=True)
            if bar is not None:
                bar.n = state.step
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()

    if state.last_checkpoint != step_dir(ckpt_root, state.step):
        _checkpoint(state, ckpt_root, keep_last, callbacks)
    wall = time.perf_counter() - t_start
    trained = state.step - start_step
    result = {
        "run_dir": str(run_dir),
        "step": state.step,
        "start_step": start_step,
        "resumed_from": resumed_from,
        "last_checkpoint": str(state.last_checkpoint) if state.last_checkpoint else None,
        "wall_s": wall,
        "images_per_s": global_batch * trained / wall if trained and wall > 0 else None,
        "world_size": ctx.world_size,
        "global_batch": global_batch,
        "lr_scale": state.lr_scale,
        "rollbacks": state.extra.get("rollbacks", []),
        "logs": last_logs,
    }
    for cb in callbacks:
        cb.on_fit_end(state, result)
    return result


# -- pieces ---------------------------------------------------------------------------------------
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


def _train_state(state: TrainState, callbacks: Sequence[Callback]) -> dict[str, Any]:
    return {
        "step": state.step,
        "optimizers": {k: o.state_dict() for k, o in state.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in state.schedulers.items()},
        "rng": rng_state(),
        "lr_scale": state.lr_scale,
        "world_size": state.ctx.world_size,
        "callbacks": {cb.name: cb.state_dict() for cb in callbacks},
    }


def _checkpoint(state: TrainState, root: Path, keep_last: int, callbacks: Sequence[Callback]) -> Path:
    # Rank 0 writes; every rank waits for it and records the same path (all ranks take the same
    # branches afterwards, e.g. a rollback, so their collective calls stay matched).
    path = step_dir(root, state.step)
    if state.ctx.is_main:
        save_checkpoint(root, state.step, state.task, _train_state(state, callbacks))
        prune_checkpoints(root, keep_last, protect=(path,))
        for cb in callbacks:
            cb.on_checkpoint(state, path)
    D.barrier(state.ctx)
    state.last_checkpoint = path
    return path


def _restore(state: TrainState, path: Path, callbacks: Sequence[Callback]) -> None:
    from ..errors import CheckpointError

    ckpt = load_checkpoint(path)
    load_model_state(state.task, ckpt.model, str(path / "model.safetensors"))
    try:
        _restore_training_state(state, path, ckpt.state, ckpt.step, callbacks)
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
    state: TrainState, path: Path, saved: dict[str, Any], step: int, callbacks: Sequence[Callback]
) -> None:
    from ..errors import CheckpointError

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
    for cb in callbacks:
        if cb.name in saved.get("callbacks", {}):
            cb.load_state_dict(saved["callbacks"][cb.name])
    if int(saved.get("world_size", 1)) != state.ctx.world_size and state.ctx.is_main:
        print(
            f"note: {path} was written with {saved.get('world_size')} processes, resuming with "
            f"{state.ctx.world_size}: the data order from here on differs from the original run",
            flush=True,
        )


def _scale_lr(state: TrainState, factor: float) -> None:
    for k, s in state.schedulers.items():
        s.base_lrs = [lr * factor for lr in s.base_lrs]
        for group in state.optimizers[k].param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor


def _log(state: TrainState, logs, ips: float, csv_log, writer, bar) -> None:
    if not state.ctx.is_main:
        return
    lrs = {f"lr_{k}": o.param_groups[0]["lr"] for k, o in state.optimizers.items()}
    row = {"step": state.step, **{k: float(v) for k, v in logs.items()}, **lrs, "images_per_s": ips}
    if csv_log is not None:
        csv_log.write(row)
    if writer is not None:
        for k, v in row.items():
            if k != "step":
                writer.add_scalar(f"train/{k}", v, state.step)
    if bar is not None:
        short = {k.removeprefix("loss_"): f"{float(v):.3g}" for k, v in logs.items()}
        bar.set_postfix(short | {"img/s": f"{ips:.1f}"}, refresh=False)


def _sample(task: nn.Module, batch: Any, run_dir: Path, step: int, writer) -> None:
    # Sampling draws no numbers from the training stream, so the sampling cadence never changes a run.
    with preserved_rng(), torch.no_grad():
        images = task.sample(batch)
    path = save_grid(run_dir / "samples" / f"step_{step:07d}.png", images)
    save_grid(run_dir / "samples" / "latest.png", images)
    if writer is not None:
        import numpy as np
        from PIL import Image

        arr = np.asarray(Image.open(path).convert("RGB"))
        writer.add_image("samples", arr, step, dataformats="HWC")
