"""Data-parallel training: two gloo processes on this machine end with identical weights (DDP semantics)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fit_tasks import DISTILL_KW, FIT_KW, NoisyPairs, TinyTask, ddp_worker, distill_task, distill_worker
from safetensors.torch import load_file

from gancompress.training import fit

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "batchnorm-dropout"])
def test_two_gloo_processes_end_with_identical_weights(tmp_path, plain):
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path), plain), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # started from different weights (seeds 0 and 1)
    torch.manual_seed(0)
    start = TinyTask(plain=plain).state_dict()
    assert any(not torch.equal(start[k], r0[k]) for k in r0 if r0[k].is_floating_point())  # it trained
    if plain:
        # Gradients averaged over 2 processes × batch 1 = one process with batch 2 on the same samples.
        torch.manual_seed(0)
        single = TinyTask(plain=True)
        fit(single, NoisyPairs(), tmp_path / "single", tensorboard=False, **dict(FIT_KW, batch_size=2))
        for k, v in single.state_dict().items():
            torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    # only rank 0 wrote checkpoints and logs, and they resume to the same weights
    assert (tmp_path / "checkpoints" / "step_0000014" / "model.safetensors").is_file()
    saved = load_file(str(tmp_path / "checkpoints" / "step_0000014" / "model.safetensors"))
    assert all(torch.equal(saved[k], r0[k]) for k in saved)


def test_two_gloo_processes_train_the_supernet_stage_as_one_process_with_twice_the_batch(tmp_path):
    # Fast GAN Compression's supernet stage (DistillTask, a sampled subnet per step) under 2 processes
    # with batch 1 each ends where 1 process with batch 2 ends, and both ranks hold the same student.
    mp.spawn(distill_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "two" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "two" / "rank1.safetensors"))
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    single = distill_task(seed=1)
    start = {k: v.clone() for k, v in single.state_dict().items()}
    fit(single, NoisyPairs(n=8, size=16), tmp_path / "one", batch_size=2, num_samples=0, **DISTILL_KW)
    assert any(not torch.equal(start[k], v) for k, v in single.state_dict().items() if v.is_floating_point())
    for k, v in single.state_dict().items():
        # A bias right before an instance norm changes no output, so its gradient is rounding noise,
        # which Adam scales up to full steps: it is compared through the outputs below instead.
        if not k.endswith(".bias"):
            torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    two = distill_task(seed=1)
    two.load_state_dict(r0)
    space = single.arch_sampler.space
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for arch in (space.largest(), space.smallest()):
            a, b = single.eval().student(x, arch=arch), two.eval().student(x, arch=arch)
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            pair = torch.cat([x, a], 1)
            torch.testing.assert_close(
                single.discriminator(pair), two.discriminator(pair), rtol=1e-4, atol=1e-5
            )
