"""Data-parallel training over ``torch.distributed`` (NCCL on GPUs, gloo on CPU), started by torchrun.

Why not ``DistributedDataParallel``: a training Task does its own backward and optimizer steps and
calls its networks several times per step (D on real and on fake images, the supernet at several
widths for the sandwich rule, G inside D's loss). DDP's reducer assumes one forward and one backward
per iteration and fires its all-reduce from autograd hooks, which breaks under that pattern. Instead
the optimizers handed to ``training_step`` are wrapped so that ``step()`` first averages the gradients
of its own parameters over all ranks (one coalesced all-reduce). Starting from identical weights
(broadcast from rank 0), every rank then applies the same averaged gradient — exactly DDP's gradient
semantics — and buffers (BatchNorm running statistics) are re-broadcast from rank 0 after each step,
as DDP does with ``broadcast_buffers=True``.
"""

from __future__ import annotations

import datetime
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> tuple[DistContext, torch.device]:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); returns (context, device).

    On CUDA every process takes the GPU ``LOCAL_RANK`` and the group uses NCCL; on CPU it uses gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device)
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistContext(), dev
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return DistContext(dist.get_rank(), dist.get_world_size(), local), dev


def _coalesced(tensors: list[torch.Tensor], op) -> None:
    if not tensors:
        return
    flat = _flatten_dense_tensors(tensors)
    op(flat)
    for t, synced in zip(tensors, _unflatten_dense_tensors(flat, tensors)):
        t.copy_(synced)


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy rank ``src``'s parameters (and floating/integer buffers) to every rank."""
    tensors = [] if buffers_only else [p.data for p in module.parameters()]
    tensors += [b for b in module.buffers()]
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        if t.numel():
            by_dtype.setdefault((t.dtype, t.device), []).append(t)
    for group in by_dtype.values():
        _coalesced(group, lambda flat: dist.broadcast(flat, src))


class GradientAveragingOptimizer:
    """An optimizer whose ``step()`` first averages its parameters' gradients over all ranks.

    Everything else (``zero_grad``, ``param_groups``, ``state_dict``) is the wrapped optimizer's.
    A parameter with a gradient on some ranks only gets a zero gradient on the others, as under
    DDP, so every rank takes the same step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, world_size: int) -> None:
        self.optimizer = optimizer
        self.world_size = world_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    @torch.no_grad()
    def average_gradients(self) -> None:
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.requires_grad]
        if not params:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
        dist.all_reduce(has)
        grads = []
        for p, n in zip(params, has.tolist()):
            if n == 0:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for g in grads:
            by_dtype.setdefault((g.dtype, g.device), []).append(g)
        for group in by_dtype.values():
            _coalesced(group, lambda flat: (dist.all_reduce(flat), flat.div_(self.world_size)))

    def step(self, closure=None):  # noqa: ANN001 - the torch signature
        self.average_gradients()
        return self.optimizer.step(closure)


def all_true(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True when ``flag`` holds on every rank."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([0 if flag else 1], dtype=torch.int32, device=device)
    dist.all_reduce(t)
    return int(t.item()) == 0


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


# -- outside the loop: what a whole compress run needs under torchrun ---------------------------------
def current() -> DistContext:
    """The context of the process group this process has joined (a single process when none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def world_size() -> int:
    """Processes training together: the group's size, or torchrun's ``WORLD_SIZE`` before it is joined."""
    ctx = current()
    return ctx.world_size if ctx.enabled else max(1, int(os.environ.get("WORLD_SIZE", "1")))


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes shared files."""
    return current().is_main


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; ``obj`` itself in a single process)."""
    if not current().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    ctx = current()
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only and hand its result to every rank; its error is raised on every rank.

    For what must happen once (writing a shared file or directory, deciding to resume), so that no
    two processes write the same path and no rank waits forever for one that failed.
    """
    if not current().enabled:
        return fn()
    result, error, sent = None, None, None
    if is_main():
        try:
            result = fn()
        except Exception as exc:  # handed to every rank below, then raised there
            error = sent = exc
            try:
                pickle.dumps(exc)
            except Exception:  # an error that does not pickle still reaches the other ranks, as text
                sent = RuntimeError(f"{type(exc).__name__}: {exc}")
    result, sent = broadcast_object((result, sent))
    if error is not None:
        raise error  # rank 0: the original, with its traceback
    if sent is not None:
        raise sent
    return result
