"""Tiny Tasks and datasets for the training-loop tests (a plain module; the subprocess tests import it too)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from gancompress.training import Callback, fit


class NoisyPairs(Dataset):
    """A → B = -A on 16-px images, with a random flip drawn from Python's global ``random`` (like the real data)."""

    def __init__(self, n: int = 10, size: int = 16) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        a = torch.rand(3, self.size, self.size, generator=g) * 2 - 1
        if random.random() > 0.5:
            a = a.flip(-1)
        return {"A": a, "B": -a}


class TinyTask(nn.Module):
    """G (two convs with dropout) against D (one conv): uses the RNG, two optimizers and a BatchNorm buffer."""

    def __init__(self, nan_at: int | None = None, nan_once: bool = False, plain: bool = False) -> None:
        super().__init__()
        if plain:  # no BatchNorm, no dropout: per-sample gradients average exactly across processes
            self.g = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
        else:
            self.g = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Dropout(0.2),
                nn.Conv2d(8, 3, 1),
            )
        self.d = nn.Conv2d(3, 1, 4, stride=2)
        self.nan_at, self.nan_once, self.nan_fired = nan_at, nan_once, False

    def configure_optimizers(self):
        return {
            "G": torch.optim.Adam(self.g.parameters(), lr=1e-2, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(self.d.parameters(), lr=1e-2, betas=(0.5, 0.999)),
        }

    def training_step(self, batch, step, optimizers):
        a, b = batch["A"], batch["B"]
        fake = self.g(a)
        optimizers["D"].zero_grad(set_to_none=True)
        d_real, d_fake = self.d(b), self.d(fake.detach())
        loss_d = F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        optimizers["D"].step()
        optimizers["G"].zero_grad(set_to_none=True)
        d_fake = self.d(fake)
        loss_g = 10 * F.l1_loss(fake, b) + 0.1 * F.mse_loss(d_fake, torch.ones_like(d_fake))
        if self.nan_at is not None and step == self.nan_at and not (self.nan_once and self.nan_fired):
            self.nan_fired = True
            loss_g = loss_g * float("nan")
        loss_g.backward()
        optimizers["G"].step()
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    @torch.no_grad()
    def sample(self, batch):
        was = self.training
        self.eval()
        out = torch.cat([batch["A"], batch["B"], self.g(batch["A"])], dim=3)
        self.train(was)
        return out

    def generator(self):
        return self.g


def make_task(**kw) -> TinyTask:
    torch.manual_seed(123)
    return TinyTask(**kw)


FIT_KW = dict(batch_size=2, max_steps=14, decay_from=7, checkpoint_every=3, log_every=2, progress=False)


class Announce(Callback):
    """Prints each finished step (the parent process kills the child at one of them)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def on_step_end(self, state, logs):
        import time

        print(f"step {state.step}", flush=True)
        time.sleep(self.delay)


def ddp_worker(rank: int, world_size: int, port: int, run_dir: str, plain: bool) -> None:
    """One process of the 2-process gloo test: trains, then saves its own final weights as rank{r}.safetensors."""
    import os

    from safetensors.torch import save_file

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    # Each rank starts from different weights: the loop must broadcast rank 0's.
    torch.manual_seed(rank)
    task = TinyTask(plain=plain)
    kw = dict(FIT_KW, batch_size=1)
    fit(task, NoisyPairs(), run_dir, tensorboard=False, **kw)
    state = {k: v.contiguous() for k, v in task.state_dict().items()}
    save_file(state, str(Path(run_dir) / f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


def distill_task(seed: int = 0) -> nn.Module:
    """Fast GAN Compression's supernet stage at tiny size: instance norms, no dropout, so per-sample
    gradients average exactly across processes. The frozen teacher is the same on every rank (it is
    not part of the state the loop broadcasts); the trained networks start from ``seed``."""
    from gancompress.methods.gan_compression.distill import DistillTask, FeatureAdapters, default_points
    from gancompress.methods.gan_compression.recipe import LossConfig, StageConfig
    from gancompress.methods.gan_compression.search_space import SearchSpace
    from gancompress.methods.gan_compression.supernet import ArchSampler, build_supernet
    from gancompress.models import create_discriminator, create_generator

    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=8, num_blocks=3)
    space = SearchSpace.for_generator(teacher, {"*": [1.0, 0.5]})
    torch.manual_seed(seed)
    student = build_supernet(teacher, space)
    pts = default_points(teacher)
    adapters = FeatureAdapters(
        {p: student.feature_channels()[p] for p in pts}, {p: teacher.feature_channels()[p] for p in pts}
    )
    disc = create_discriminator("patchgan", in_channels=6, base_width=4, num_layers=2, norm="instance")
    stage = StageConfig(lr_g=1e-3, lr_d=1e-3)
    return DistillTask(
        student, teacher, disc, adapters, LossConfig(), stage, ArchSampler(space, "uniform", 0)
    )


DISTILL_KW = dict(
    max_steps=6, decay_from=3, checkpoint_every=3, log_every=1, progress=False, tensorboard=False
)


def distill_worker(rank: int, world_size: int, port: int, run_dir: str) -> None:
    """One process of the 2-process supernet-stage test: saves its final weights as rank{r}.safetensors."""
    import os

    from safetensors.torch import save_file

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    task = distill_task(seed=rank + 1)  # rank 1 starts elsewhere: the loop must broadcast rank 0's
    fit(task, NoisyPairs(n=8, size=16), run_dir, batch_size=1, num_samples=0, **DISTILL_KW)
    state = {k: v.contiguous() for k, v in task.state_dict().items()}
    save_file(state, str(Path(run_dir) / f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    # python fit_tasks.py RUN_DIR: the run a test kills with SIGKILL and resumes.
    run_dir = Path(sys.argv[1])
    torch.set_num_threads(1)  # the test compares weights bit for bit with its 1-thread runs
    fit(make_task(), NoisyPairs(), run_dir, tensorboard=False, callbacks=[Announce(0.05)], **FIT_KW)
