"""Processes of the multi-process tests (``torch.multiprocessing.spawn`` needs importable functions):
the GAN Compression search and a whole ``compress`` run, each as one rank of a gloo group."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

# Fast GAN Compression's quick recipe at tiny size: instance norms everywhere and no dropout, so that
# per-sample gradients average across processes exactly as one process with the summed batch.
FGC_TINY = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.holdout=4",
    "discriminator.base_width=4",
    "discriminator.num_layers=2",
    "discriminator.norm=instance",
    "supernet.search_space={'*': [1.0, 0.5]}",
    "supernet.train.max_steps=4",
    "supernet.train.checkpoint_every=2",
    "supernet.train.log_every=1",
    "search.population=4",
    "search.generations=1",
    "search.eval_batch_size=4",
    "search.calibration_batches=1",
    "finetune.max_steps=2",
    "finetune.checkpoint_every=2",
    "finetune.log_every=1",
)
# Every method at tiny size (the precision tests and the torchrun command test).
TINY = {
    "fast-gan-compression": (*FGC_TINY, "data.batch_size=2"),
    "gan-compression": (
        *FGC_TINY,
        "data.batch_size=2",
        "search.strategy=exhaustive",
        "supernet.search_space={'*': [0.5, 0.25]}",
        "mobile_teacher.train.max_steps=2",
        "mobile_teacher.train.checkpoint_every=2",
    ),
    "gan-slimming": (
        "data.load_size=32",
        "data.crop_size=32",
        "data.batch_size=2",
        "data.holdout=4",
        "discriminator.base_width=4",
        "slim.train.max_steps=4",
        "slim.train.checkpoint_every=2",
        "finetune.max_steps=2",
    ),
    "coronet": (
        "data.load_size=32",
        "data.crop_size=32",
        "data.batch_size=2",
        "data.holdout=4",
        "hypernet.embedding_dim=2",
        "discriminator.base_width=4",
        "prune.train.max_steps=4",
        "prune.train.checkpoint_every=2",
        "finetune.max_steps=2",
        "prune.regularization=20.0",
        "prune.lr_latent=0.05",
    ),
}
# Only the precision is judged here: a random tiny teacher's students may fail the quality gate.
NO_GATE = ("gate.enabled=false",)
SEARCH_SPACE = {
    "*": [1.0],
    "stem": [1.0, 0.5],
    "trunk": [0.5, 0.25],
    "hidden3": [1.0, 0.5],
    "up2": [1.0, 0.5],
}


def join(rank: int, world_size: int, port: int) -> None:
    """What torchrun would set for this process."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)


def tiny_teacher():
    from gancompress.models import create_generator

    torch.manual_seed(0)
    return create_generator("resnet", base_width=8, num_blocks=3)


def run_search(out: Path, strategy: str) -> dict:
    """A search over a 16-subnet space of a tiny supernet, scored by PSNR against the teacher."""
    from gancompress.methods.gan_compression.search import (
        Budget,
        HeldOut,
        MacsTable,
        SubnetEvaluator,
        evolutionary_search,
        exhaustive_search,
    )
    from gancompress.methods.gan_compression.search_space import SearchSpace
    from gancompress.methods.gan_compression.supernet import build_supernet

    teacher = tiny_teacher().eval()
    space = SearchSpace.for_generator(teacher, SEARCH_SPACE)
    torch.manual_seed(1)
    supernet = build_supernet(teacher, space).eval()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    held = HeldOut(inputs=[x[:4], x[4:]], reals=[x[:4], x[4:]], extras=[{}, {}], slice_id="tiny")
    table = MacsTable(supernet, (32, 32))
    budget = Budget("macs", (table(space.largest()) + table(space.smallest())) / 2, table)
    ev = SubnetEvaluator(
        supernet, held, "psnr", target="teacher", teacher=teacher, cache_path=out / "cache.json"
    )
    computed = []
    plain = ev.compute
    ev.compute = lambda arch: computed.append(str(arch)) or plain(arch)  # counts this rank's share
    if strategy == "exhaustive":
        found = exhaustive_search(space, budget, ev)
    else:
        found = evolutionary_search(space, budget, ev, population=6, generations=2, mutate_prob=0.5, seed=3)
    return {**found.to_dict(), "computed": computed}


def search_worker(rank: int, world_size: int, port: int, out: str, strategy: str) -> None:
    join(rank, world_size, port)
    torch.distributed.init_process_group("gloo")
    result = run_search(Path(out), strategy)
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


def run_compress(data: str, out: Path, batch_size: int):
    from gancompress.methods import MethodOptions, compress

    options = MethodOptions(quick=True, ratio=0.3, overrides=(*FGC_TINY, f"data.batch_size={batch_size}"))
    return compress("fast-gan-compression", tiny_teacher(), Path(data), out, options)


def compress_worker(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    """One rank of ``compress`` (batch 1 per rank); saves the student it ends with as rank{r}.safetensors."""
    from safetensors.torch import save_file

    join(rank, world_size, port)
    result = run_compress(data, Path(out), batch_size=1)
    state = {k: v.detach().contiguous() for k, v in result.generator.state_dict().items()}
    save_file(
        state, str(Path(out) / f"rank{rank}.safetensors"), metadata={"arch": str(result.generator.arch)}
    )
    torch.distributed.destroy_process_group()
