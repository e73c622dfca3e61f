"""Choosing the subnet: exhaustive (GAN Compression) or evolutionary (Fast GAN Compression) search.

Candidates are subnets of the trained supernet under a budget in paper-convention MACs (measured by
``profile_generator`` on the subnet, cached per architecture string) or in latency measured on this
machine. Each candidate is scored on a held-out slice of the training data, after its BatchNorm
statistics are recomputed when the family has BatchNorm. Scores are cached in a JSON file keyed by
architecture, metric, data slice and supernet weights, so a search resumes after an interruption and
re-runs with a new budget without retraining or re-scoring. Under torchrun each rank scores a share of
the uncached candidates (:meth:`SubnetEvaluator.prefetch`), the ranks exchange their scores, and rank 0
writes the merged cache: every rank then takes the same decisions and finds the same subnet.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import BudgetError, CheckpointError, ConfigError
from ...metrics.profile import profile_generator
from ...models import Generator
from ...utils.files import atomic_write_json
from .search_space import SearchSpace

HIGHER_IS_BETTER = {"psnr": True, "miou": True, "l1": False, "fid": False, "kid": False}


class JsonCache:
    """A string → JSON-value table kept in one file, rewritten atomically on every new entry."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.data: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CheckpointError(
                    f"{self.path}: search cache is not valid JSON ({exc}); delete it"
                ) from None
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise CheckpointError(f"{self.path}: search cache must hold an object with 'entries'")
            self.data = data["entries"]

    def get(self, key: str) -> Any:
        value = self.data.get(key)
        # Every table holds finite numbers (MACs, ms, scores); anything else is a damaged file.
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise CheckpointError(
                f"{self.path}: entry {key!r} is {value!r}, not a finite number; delete the file"
            )
        return value

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def put(self, key: str, value: Any) -> None:
        self.put_many({key: value})

    def put_many(self, entries: Mapping[str, Any]) -> None:
        """Add ``entries`` and rewrite the file once; under torchrun only rank 0 writes it."""
        from ...training.distributed import is_main

        self.data.update(entries)
        if self.path is not None and entries and is_main():
            atomic_write_json(self.path, {"version": 1, "entries": self.data})


# -- costs ----------------------------------------------------------------------------------------
class MacsTable:
    """Paper-convention MACs of subnets of ``supernet`` at ``size``, profiled on the meta device.

    Example:
        >>> table = MacsTable(supernet, (256, 256), cache_path)
        >>> table(ArchSpec.parse("resnet", "16_16_32_16_32_32_16_16"))
        2668437504
    """

    def __init__(self, supernet: Generator, size: tuple[int, int], cache_path: Path | None = None) -> None:
        self.family = supernet.family
        self.cls = type(supernet)
        self.options = dict(supernet.options)
        self.size = tuple(size)
        self.cache = JsonCache(cache_path)

    def key(self, arch: ArchSpec) -> str:
        return f"{arch}|{self.size[0]}x{self.size[1]}"

    def __call__(self, arch: ArchSpec) -> int:
        key = self.key(arch)
        hit = self.cache.get(key)
        if hit is not None:
            return int(hit)
        macs = profile_arch(self.cls, self.options, arch, self.size).macs_paper
        self.cache.put(key, macs)
        return macs


def profile_arch(cls: type, options: Mapping[str, Any], arch: ArchSpec, size: tuple[int, int]):
    """Profile a generator of ``cls`` at ``arch`` without allocating weights (meta device)."""
    with torch.device("meta"):
        net = cls.from_options(arch, dict(options))
    return profile_generator(net, tuple(size))


def measure_latency_ms(net: nn.Module, example: torch.Tensor, repeats: int = 10, warmup: int = 3) -> float:
    """Median wall time in ms of ``net(example)`` in PyTorch eager, no grad (each call timed alone)."""
    net.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            net(example)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(example)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class LatencyTable:
    """Latency (ms, deploy form in PyTorch eager, batch 1, median of repeats) of subnets here, cached."""

    def __init__(
        self,
        supernet: Generator,
        size: tuple[int, int],
        cache_path: Path | None = None,
        repeats: int = 10,
        warmup: int = 3,
    ) -> None:
        self.supernet = supernet
        self.size = tuple(size)
        self.repeats = repeats
        self.warmup = warmup
        self.cache = JsonCache(cache_path)

    def key(self, arch: ArchSpec) -> str:
        return f"{arch}|{self.size[0]}x{self.size[1]}|threads{torch.get_num_threads()}|{torch.__version__}|deploy"

    def __call__(self, arch: ArchSpec) -> float:
        key = self.key(arch)
        hit = self.cache.get(key)
        if hit is not None:
            return float(hit)
        from ...bench.latency import deployed_latency_ms
        from ...training.distributed import on_main

        def measure() -> float:
            # the deployed form (fixed widths, exact rewrites) through the benchmark's runtime registry
            sub = self.supernet.extract_subnet(arch).eval()
            return deployed_latency_ms(
                sub, self.size, threads=torch.get_num_threads(), warmup=self.warmup, repeats=self.repeats
            )

        # Under torchrun rank 0 measures while the others wait (no rank slows another's timing), and
        # every rank gets its figure, so all of them see the same budget and search the same way.
        ms = on_main(measure)
        self.cache.put(key, ms)
        return ms


@dataclass(frozen=True)
class Budget:
    """A limit on a cost function of architectures (MACs or ms)."""

    kind: str  # "macs" | "latency_ms"
    limit: float
    cost: Callable[[ArchSpec], float]

    def feasible(self, arch: ArchSpec) -> bool:
        return self.cost(arch) <= self.limit

    def check_reachable(self, space: SearchSpace) -> None:
        """Raise :class:`BudgetError` when even the smallest architecture is over the budget."""
        smallest = space.smallest()
        cost = self.cost(smallest)
        if cost > self.limit:
            unit = "MACs" if self.kind == "macs" else "ms"
            raise BudgetError(
                f"budget of {_fmt(self.limit)} {unit} is below the smallest reachable {_fmt(cost)} {unit} "
                f"(the search space's smallest arch {smallest}); raise the budget or widen the search space"
            )


def _fmt(value: float) -> str:
    return f"{value:,.0f} ({value:.4g})" if value >= 1000 else f"{value:.4g}"


# -- scoring --------------------------------------------------------------------------------------
def recalibrate_batchnorm(net: nn.Module, batches: Iterable[tuple[torch.Tensor, dict[str, Any]]]) -> int:
    """Recompute BatchNorm running statistics of ``net`` from ``batches`` (cumulative average).

    Subnets of a supernet share the supernet's running statistics, which belong to no subnet; this
    resets them and runs the given batches in train mode without gradients. Returns the number of
    BatchNorm layers recalibrated (0: nothing to do; the network is left as it was).
    """
    bns = [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was = net.training
    net.train()
    with torch.no_grad():
        for x, kwargs in batches:
            net(x, **kwargs)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    net.train(was)
    return len(bns)


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1], computed on the [0, 1] scale."""
    mse = ((fake - real) / 2).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


@dataclass
class HeldOut:
    """The held-out slice: generator inputs, real outputs, extra forward arguments, and its identity."""

    inputs: list[torch.Tensor]
    reals: list[torch.Tensor]
    extras: list[dict[str, Any]]
    slice_id: str
    calibration: list[tuple[torch.Tensor, dict[str, Any]]] = field(default_factory=list)


def state_digest(module: nn.Module) -> str:
    """A short hash of a module's weights (so cached scores belong to exactly these weights)."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class SubnetEvaluator:
    """Scores subnets of a supernet on a held-out slice, with a cache and a count of real evaluations.

    ``metric``: psnr / l1 against ``target`` ("ground_truth" or the teacher's output), or fid / kid
    (with the domain feature extractor of ``gancompress.metrics``, or the one ``extractor`` names)
    against the real images.

    Example:
        >>> ev = SubnetEvaluator(supernet, held_out, "psnr", cache_path=run / "search_cache.json")
        >>> ev(ArchSpec.parse("resnet", "16_16_32_16_32_32_16_16"))
        21.7
    """

    def __init__(
        self,
        supernet: Generator,
        held_out: HeldOut,
        metric: str,
        *,
        target: str = "ground_truth",
        teacher: Generator | None = None,
        cache_path: Path | None = None,
        feature_metric: Callable[[list[torch.Tensor], list[torch.Tensor], str], float] | None = None,
        segmenter: nn.Module | None = None,
        num_classes: int | None = None,
        extractor: str | None = None,
    ) -> None:
        if metric not in HIGHER_IS_BETTER:
            raise ConfigError(f"search.metric must be one of {sorted(HIGHER_IS_BETTER)}, got {metric!r}")
        if not held_out.inputs:
            raise ConfigError("the held-out slice is empty: set data.holdout to a positive number of images")
        if target == "teacher" and teacher is None:
            raise ConfigError("search.metric_target 'teacher' needs the teacher")
        if metric in ("fid", "kid") and feature_metric is None:
            raise ConfigError(f"search.metric {metric!r} needs a feature metric from gancompress.metrics")
        if metric == "miou" and (segmenter is None or not num_classes):
            raise ConfigError(
                "search.metric 'miou' needs a segmenter (search.segmenter) and its number of classes"
            )
        self.supernet = supernet
        self.held_out = held_out
        self.metric = metric
        self.target = target
        self.teacher = teacher
        self.feature_metric = feature_metric
        self.extractor = extractor
        self.segmenter = segmenter.eval() if segmenter is not None else None
        self.num_classes = num_classes
        self.higher_is_better = HIGHER_IS_BETTER[metric]
        self.weights_id = state_digest(supernet)
        self.cache = JsonCache(cache_path)
        self.evaluations = 0
        self._targets: list[torch.Tensor] | None = None

    def key(self, arch: ArchSpec) -> str:
        target = self.target if self.metric in ("psnr", "l1") else "real"
        if self.metric in ("fid", "kid") and self.extractor:
            target += f"@{self.extractor}"
        calib = len(self.held_out.calibration)
        return f"{arch}|{self.metric}|{target}|{self.held_out.slice_id}|w{self.weights_id}|calib{calib}"

    def targets(self) -> list[torch.Tensor]:
        if self._targets is None:
            if self.target == "teacher" and self.metric in ("psnr", "l1"):
                with torch.no_grad():
                    self.teacher.eval()
                    self._targets = [
                        self.teacher(x, **kw) for x, kw in zip(self.held_out.inputs, self.held_out.extras)
                    ]
            else:
                self._targets = self.held_out.reals
        return self._targets

    def outputs(self, arch: ArchSpec) -> list[torch.Tensor]:
        """The subnet's outputs on the held-out inputs (after BatchNorm recalibration)."""
        sub = self.supernet.extract_subnet(arch)
        recalibrate_batchnorm(sub, self.held_out.calibration)
        sub.eval()
        with torch.no_grad():
            return [sub(x, **kw) for x, kw in zip(self.held_out.inputs, self.held_out.extras)]

    def __call__(self, arch: ArchSpec) -> float:
        key = self.key(arch)
        hit = self.cache.get(key)
        if hit is not None:
            return float(hit)
        value = self.compute(arch)
        self.evaluations += 1
        self.cache.put(key, value)
        return value

    def prefetch(self, archs: Iterable[ArchSpec], progress: bool = False) -> None:
        """Under torchrun: score the uncached ``archs``, each rank a share, and merge every rank's scores
        into the cache (rank 0 writes the file); afterwards each ``evaluate(arch)`` is a cache hit on
        every rank. A single process does nothing here (it scores on demand)."""
        from ...training import distributed as D

        ctx = D.current()
        if not ctx.enabled:
            return
        todo = unique([a for a in archs if self.cache.get(self.key(a)) is None])
        mine = todo[ctx.rank :: ctx.world_size]
        found: dict[str, float] = {}
        error: tuple[str, str] | None = None
        try:
            for arch in _bar(mine, progress and ctx.is_main, "search", len(mine)):
                found[self.key(arch)] = self.compute(arch)
        except Exception as exc:  # every rank must reach the gather below, then all raise
            error = (type(exc).__name__, str(exc))
            if isinstance(exc, ConfigError):
                error = ("ConfigError", str(exc))
        gathered = D.all_gather_object((found, error))
        for rank, (_, err) in enumerate(gathered):
            if err is not None:
                kind, text = err
                raise (ConfigError if kind == "ConfigError" else RuntimeError)(
                    f"{text} (search on rank {rank})"
                )
        merged = {k: v for f, _ in gathered for k, v in f.items()}
        self.evaluations += len(merged)
        self.cache.put_many({self.key(a): merged[self.key(a)] for a in todo})

    def compute(self, arch: ArchSpec) -> float:
        """The metric of ``arch`` on the held-out slice, computed now (no cache)."""
        fakes = self.outputs(arch)
        if self.metric == "psnr":
            value = float(torch.cat([psnr(f, r) for f, r in zip(fakes, self.targets())]).mean())
        elif self.metric == "l1":
            value = float(
                torch.cat([(f - r).abs().flatten(1).mean(1) for f, r in zip(fakes, self.targets())]).mean()
            )
        elif self.metric == "miou":
            value = self.miou(fakes)
        else:
            forced = {"extractor": self.extractor} if self.extractor else {}
            value = float(self.feature_metric(fakes, self.held_out.reals, self.metric, **forced))
        if not math.isfinite(value):
            raise ConfigError(f"search metric {self.metric} of {arch} is not finite ({value})")
        return value

    @torch.no_grad()
    def miou(self, fakes: list[torch.Tensor]) -> float:
        """Mean IoU of the segmenter's classes on the fakes, against the label maps when the inputs
        are one-hot label maps (semantic data), else against its classes on the real images."""
        from ...metrics.segmentation import confusion_matrix, mean_iou

        n = int(self.num_classes)
        total = np.zeros((n, n), np.int64)
        for fake, x, real in zip(fakes, self.held_out.inputs, self.held_out.reals):
            pred = self.segmenter(fake).argmax(1)
            labels_in = x.shape[1] >= n and x.shape[1] != real.shape[1]
            target = x[:, :n].argmax(1) if labels_in else self.segmenter(real).argmax(1)
            total += confusion_matrix(pred, target, n)
        return mean_iou(total)[0]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def rank_key(self, value: float) -> float:
        """Sort key: smaller is better."""
        return -value if self.higher_is_better else value


# -- search strategies ----------------------------------------------------------------------------
@dataclass
class SearchResult:
    """The chosen architecture, its score and cost, and how the search went."""

    arch: ArchSpec
    score: float
    cost: float
    budget_kind: str
    budget: float
    metric: str
    strategy: str
    candidates: int  # architectures scored (from the cache or freshly)
    evaluations: int  # of those, how many were computed in this run
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": str(self.arch),
            "score": self.score,
            "metric": self.metric,
            "cost": self.cost,
            "budget_kind": self.budget_kind,
            "budget": self.budget,
            "strategy": self.strategy,
            "candidates": self.candidates,
            "evaluations": self.evaluations,
            "history": self.history,
        }


def exhaustive_search(
    space: SearchSpace,
    budget: Budget,
    evaluate: SubnetEvaluator,
    max_candidates: int | None = None,
    progress: bool = False,
) -> SearchResult:
    """Score every architecture of ``space`` within ``budget`` and return the best (GAN Compression).

    Ties keep the architecture enumerated first (the widest), so the result is deterministic.
    """
    budget.check_reachable(space)
    feasible = [a for a in _bar(space.enumerate(), progress, "budget", space.size) if budget.feasible(a)]
    if max_candidates is not None and len(feasible) > max_candidates:
        raise ConfigError(
            f"exhaustive search would score {len(feasible)} architectures (search.max_candidates is "
            f"{max_candidates}); use search.strategy=evolution or a smaller space"
        )
    before = evaluate.evaluations
    _prefetch(evaluate, feasible, progress)  # under torchrun: each rank scores a share
    best, best_score = None, None
    for arch in _bar(feasible, progress, "search", len(feasible)):
        score = evaluate(arch)
        if best is None or evaluate.better(score, best_score):
            best, best_score = arch, score
    return SearchResult(
        arch=best,
        score=best_score,
        cost=budget.cost(best),
        budget_kind=budget.kind,
        budget=budget.limit,
        metric=evaluate.metric,
        strategy="exhaustive",
        candidates=len(feasible),
        evaluations=evaluate.evaluations - before,
    )


def _prefetch(evaluate: Any, archs: Sequence[ArchSpec], progress: bool = False) -> None:
    # Any callable scorer works with the strategies; only a SubnetEvaluator shares work across ranks.
    prefetch = getattr(evaluate, "prefetch", None)
    if prefetch is not None:
        prefetch(archs, progress)


def _bar(items: Iterable, enabled: bool, unit: str, total: int) -> Iterable:
    """``items`` behind a progress bar when ``enabled``."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, unit=unit, dynamic_ncols=True, mininterval=1.0)


def _feasible_or_none(make: Callable[[], ArchSpec], budget: Budget, tries: int) -> ArchSpec | None:
    for _ in range(tries):
        arch = make()
        if budget.feasible(arch):
            return arch
    return None


def mutate(arch: ArchSpec, space: SearchSpace, prob: float, rng: random.Random) -> ArchSpec:
    """Resample each width with probability ``prob`` from its group's choices."""
    widths = tuple(rng.choice(c) if rng.random() < prob else w for w, c in zip(arch.widths, space.choices))
    return ArchSpec(arch.family, widths)


def crossover(a: ArchSpec, b: ArchSpec, rng: random.Random) -> ArchSpec:
    """Each width from one of the two parents, chosen at random."""
    return ArchSpec(a.family, tuple(x if rng.random() < 0.5 else y for x, y in zip(a.widths, b.widths)))


def evolutionary_search(
    space: SearchSpace,
    budget: Budget,
    evaluate: SubnetEvaluator,
    *,
    population: int = 100,
    generations: int = 500,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutate_prob: float = 0.2,
    weighted_sample: float = 1.0,
    weight_strategy: str = "arithmetic",
    seed: int = 0,
    max_tries: int = 200,
    progress: bool = False,
) -> SearchResult:
    """Fast GAN Compression's evolutionary search within ``budget``, as its ``evolution_search.py``.

    The first generation is ``population`` feasible samples (smaller widths favoured when
    ``weighted_sample`` > 1, see :meth:`SearchSpace.sample_weighted`). Each generation keeps the best
    ``round(parent_ratio × population)`` as parents and adds ``round(mutation_ratio × population)``
    mutants (a parent drawn with replacement, each width resampled with ``mutate_prob``) and
    ``population`` minus that many crossovers (two parents drawn independently, with replacement; each
    width from one of them), so a generation after the first has parents + ``population`` members
    (officially 25 + 50 + 50). Children over the budget are redrawn, up to ``max_tries`` times (the
    official code retries without end), then the parent is kept. Unlike the official loop, which
    ranks ``generations`` times and leaves the last children unranked, the last generation is ranked
    too. Deterministic for a given ``seed`` and cache.
    """
    budget.check_reachable(space)
    rng = random.Random(seed)
    smallest = space.smallest()
    pop: list[ArchSpec] = []
    for _ in range(population):
        first = _feasible_or_none(
            lambda: space.sample_weighted(rng, weighted_sample, weight_strategy), budget, max_tries
        )
        pop.append(first if first is not None else smallest)
    num_parents = max(1, int(round(population * parent_ratio)))
    num_mutants = int(round(population * mutation_ratio))
    num_cross = max(0, population - num_mutants)
    before = evaluate.evaluations
    seen: dict[str, float] = {}
    history = []

    def score(arch: ArchSpec) -> float:
        value = evaluate(arch)
        seen[str(arch)] = value
        return value

    best, best_score = None, None
    for gen in _bar(range(generations + 1), progress, "generation", generations + 1):
        _prefetch(evaluate, pop)  # under torchrun: each rank scores a share of the new members
        ranked = sorted(pop, key=lambda a: (evaluate.rank_key(score(a)), str(a)))
        if best is None or evaluate.better(seen[str(ranked[0])], best_score):
            best, best_score = ranked[0], seen[str(ranked[0])]
        history.append({"generation": gen, "best": str(best), "score": best_score, "size": len(pop)})
        if gen == generations:
            break
        parents = ranked[:num_parents]
        children = list(parents)
        for _ in range(num_mutants):
            parent = parents[rng.randrange(num_parents)]
            child = _feasible_or_none(lambda p=parent: mutate(p, space, mutate_prob, rng), budget, max_tries)
            children.append(child if child is not None else parent)
        for _ in range(num_cross):
            a, b = parents[rng.randrange(num_parents)], parents[rng.randrange(num_parents)]
            child = _feasible_or_none(lambda a=a, b=b: crossover(a, b, rng), budget, max_tries)
            children.append(child if child is not None else a)
        pop = children
    return SearchResult(
        arch=best,
        score=best_score,
        cost=budget.cost(best),
        budget_kind=budget.kind,
        budget=budget.limit,
        metric=evaluate.metric,
        strategy="evolution",
        candidates=len(seen),
        evaluations=evaluate.evaluations - before,
        history=history,
    )


def unique(archs: Sequence[ArchSpec]) -> list[ArchSpec]:
    out, seen = [], set()
    for a in archs:
        if str(a) not in seen:
            seen.add(str(a))
            out.append(a)
    return out
