"""The evolutionary search and its search spaces as mit-han-lab/gan-compression's
evolution_search.py and configs/*_configs.py define them, on a synthetic score (no network)."""

import inspect
import random
from collections import Counter

import pytest
import torch

from gancompress.arch import ArchSpec
from gancompress.errors import ConfigError
from gancompress.methods.gan_compression import search as search_mod
from gancompress.methods.gan_compression.recipe import SearchConfig
from gancompress.methods.gan_compression.search import Budget, evolutionary_search
from gancompress.methods.gan_compression.search_space import SearchSpace
from gancompress.models import create_generator

GROUPS = ("a", "b", "c", "d")


class SumScore:
    """Higher is better: the sum of the widths (so the search climbs toward the budget)."""

    metric = "psnr"

    def __init__(self):
        self.evaluations = 0

    def __call__(self, arch):
        self.evaluations += 1
        return float(sum(arch.widths))

    def rank_key(self, value):
        return -value

    def better(self, a, b):
        return a > b


def _space():
    return SearchSpace("toy", GROUPS, ((64, 48, 40, 32),) * 4)


def _count_children(monkeypatch):
    calls = Counter()
    mutate, crossover = search_mod.mutate, search_mod.crossover

    def counting_mutate(*args):
        calls["mutate"] += 1
        return mutate(*args)

    def counting_crossover(a, b, rng):
        calls["crossover"] += 1
        calls["same_parents"] += a == b
        return crossover(a, b, rng)

    monkeypatch.setattr(search_mod, "mutate", counting_mutate)
    monkeypatch.setattr(search_mod, "crossover", counting_crossover)
    return calls


def test_each_generation_adds_mutants_and_crossovers_to_the_parents(monkeypatch):
    calls = _count_children(monkeypatch)
    space = _space()
    budget = Budget("macs", 1e9, lambda a: 0.0)  # everything feasible: no redraws
    found = evolutionary_search(
        space, budget, SumScore(), population=20, generations=3, parent_ratio=0.25, mutation_ratio=0.5, seed=1
    )
    # officially: 25 parents + 50 mutants + 50 crossovers at population 100
    assert calls["mutate"] == 3 * 10 and calls["crossover"] == 3 * 10
    assert [h["size"] for h in found.history] == [20, 25, 25, 25]


def test_crossover_parents_are_drawn_with_replacement(monkeypatch):
    calls = _count_children(monkeypatch)
    budget = Budget("macs", 1e9, lambda a: 0.0)
    # one parent: every crossover is of that parent with itself (the official np.random.randint draws)
    evolutionary_search(_space(), budget, SumScore(), population=4, generations=2, parent_ratio=0.25, seed=0)
    assert calls["crossover"] == 2 * 2 and calls["same_parents"] == calls["crossover"]


def test_the_search_stays_within_budget_and_finds_the_best():
    space = _space()
    budget = Budget("macs", 200, lambda a: float(sum(a.widths)))
    found = evolutionary_search(space, budget, SumScore(), population=20, generations=6, seed=0)
    assert sum(found.arch.widths) <= 200
    assert found.score == 200  # e.g. 64_48_48_40: the sum reaches the budget exactly


def test_weighted_first_generation_favours_small_widths():
    space = _space()
    rng = random.Random(0)
    geo = Counter(w for _ in range(4000) for w in space.sample_weighted(rng, 3, "geometric").widths)
    # weights 1, 3, 9, 27 on 64, 48, 40, 32 (the official geometric strategy)
    assert abs(geo[32] / sum(geo.values()) - 27 / 40) < 0.03
    assert abs(geo[64] / sum(geo.values()) - 1 / 40) < 0.01
    ari = Counter(w for _ in range(4000) for w in space.sample_weighted(rng, 2, "arithmetic").widths)
    # weights 3, 4, 5, 6: (n-1)/(w-1) upward in steps of 1
    assert abs(ari[32] / sum(ari.values()) - 6 / 18) < 0.03
    uniform = space.sample_weighted(random.Random(5), 1.0)
    assert uniform == space.sample(random.Random(5))
    with pytest.raises(ConfigError, match="weight strategy"):
        space.sample_weighted(rng, 2, "harmonic")


def test_weighted_sample_changes_only_the_first_generation(monkeypatch):
    seen = []
    original = SearchSpace.sample_weighted

    def spy(self, rng, weight=1.0, strategy="arithmetic"):
        seen.append(weight)
        return original(self, rng, weight, strategy)

    monkeypatch.setattr(SearchSpace, "sample_weighted", spy)
    budget = Budget("macs", 1e9, lambda a: 0.0)
    evolutionary_search(_space(), budget, SumScore(), population=10, generations=3, weighted_sample=3, seed=0)
    assert seen == [3] * 10


def test_official_defaults():
    assert inspect.signature(evolutionary_search).parameters["mutate_prob"].default == 0.2
    cfg = SearchConfig()
    assert (cfg.population, cfg.generations, cfg.parent_ratio, cfg.mutation_ratio, cfg.mutate_prob) == (
        100,
        500,
        0.25,
        0.5,
        0.2,
    )
    assert cfg.weighted_sample == 1.0 and cfg.weight_strategy == "arithmetic"


@pytest.mark.parametrize(
    "family,kw,name,released",
    [
        ("resnet", {}, "channels-64-cycleGAN", "16_16_24_16_32_64_16_24"),
        ("resnet", {}, "channels-64-pix2pix", "24_24_40_56_24_56_16_40"),
        ("resnet", {}, "channels-64-pix2pix", "16_24_48_56_40_48_24_16"),
        ("resnet", {}, "channels-64-pix2pix", "16_16_40_40_40_64_24_16"),
        ("spade", {"preset": "cityscapes"}, "channels-64", "32_32_32_48_32_24_24_32"),
        ("spade", {"preset": "coco"}, "channels-64", "40_32_32_40_32_40_24_24"),
        ("munit", {}, "channels-64", "16_16_16_24_56_16_40_40_32_24"),
    ],
)
def test_released_fast_architectures_lie_in_the_official_named_spaces(family, kw, name, released):
    with torch.device("meta"):
        g = create_generator(family, separable=True, **kw)
    space = SearchSpace.for_generator(g, name)
    assert ArchSpec.parse(family, released) in space
    assert str(space.largest()) == "_".join(["64"] * len(g.width_groups))


def test_official_space_contents_and_unknown_names():
    with torch.device("meta"):
        g = create_generator("resnet", separable=True)
    assert SearchSpace.for_generator(g, "channels-64-pix2pix").choices[0] == (64, 56, 48, 40, 32, 24, 16)
    assert SearchSpace.for_generator(g, "channels-64-cycleGAN").choices[0] == (64, 48, 32, 24, 16)
    with pytest.raises(ConfigError, match="named ones"):
        SearchSpace.for_generator(g, "channels-65")
