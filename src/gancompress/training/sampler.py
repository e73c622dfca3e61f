"""A deterministic, resumable, shardable order of training samples.

The order is a stream of per-epoch permutations, each drawn from ``(seed, epoch)``; global step ``s``
takes stream positions ``[s*B, (s+1)*B)`` for the global batch ``B`` (all ranks together), and rank
``r`` takes its own slice of those. Data position is therefore a function of the step alone: a run
resumed at step ``k`` reads exactly what the uninterrupted run read from step ``k`` on.

Each sample's random crop and flip are drawn from generators seeded by ``(seed, position)``, so they
do not depend on worker processes, on where a run was resumed, or on the training RNG stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import DataError

_EPOCH_MIX = 1_000_003
_POSITION_MIX = 2_654_435_761


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the ``n`` samples in ``epoch`` (the same on every machine and process)."""
    g = torch.Generator().manual_seed(seed * _EPOCH_MIX + epoch)
    return torch.randperm(n, generator=g).tolist()


class SeededSampler(Sampler):
    """Yields ``(index, position)`` pairs of this rank from ``start_step`` to ``max_steps``.

    Example:
        >>> list(SeededSampler(4, batch_size=2, seed=0, start_step=1, max_steps=2))
        [(3, 2), (2, 3)]
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        start_step: int,
        max_steps: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_samples <= 0:
            raise DataError("the training dataset is empty")
        self.n, self.batch_size, self.seed = num_samples, batch_size, seed
        self.start_step, self.max_steps = start_step, max_steps
        self.rank, self.world_size = rank, world_size
        self._perm: tuple[int, list[int]] | None = None

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, epoch_permutation(self.n, self.seed, epoch))
        return self._perm[1][offset]

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for step in range(self.start_step, self.max_steps):
            first = step * self.global_batch + self.rank * self.batch_size
            for position in range(first, first + self.batch_size):
                yield self.index_at(position), position


def sample_seed(seed: int, position: int) -> int:
    return (seed * _POSITION_MIX + position * 40_503 + 12_345) % 2**32


class PositionedDataset(Dataset):
    """Reads ``dataset[index]`` for an ``(index, position)`` key with position-seeded random transforms.

    The global Python, NumPy and torch CPU generators are restored afterwards, so reading data (in
    the main process, ``num_workers=0``) never moves the training RNG stream.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, position = key
        s = sample_seed(self.seed, position)
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            random.seed(s)
            np.random.seed(s)
            torch.default_generator.manual_seed(s)
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
