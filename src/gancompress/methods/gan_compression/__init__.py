"""GAN Compression and Fast GAN Compression (Li et al., CVPR 2020 / TPAMI 2021).

Distillation at the generator's feature points, a once-for-all supernet that is just the student
generator called with sampled widths, exhaustive or evolutionary search under a MACs or latency
budget, fine-tuning, and export as a plain generator of the same family.
"""

from . import pipeline  # noqa: F401  (registers the two runners)
from .distill import DistillTask, FeatureAdapters, build_discriminator
from .pipeline import run_fast_gan_compression, run_gan_compression
from .recipe import GanCompressionRecipe, load_recipe
from .search import (
    Budget,
    LatencyTable,
    MacsTable,
    SearchResult,
    SubnetEvaluator,
    evolutionary_search,
    exhaustive_search,
    recalibrate_batchnorm,
)
from .search_space import SearchSpace
from .supernet import ArchSampler, build_supernet, mobile_generator

__all__ = [
    "ArchSampler",
    "Budget",
    "DistillTask",
    "FeatureAdapters",
    "GanCompressionRecipe",
    "LatencyTable",
    "MacsTable",
    "SearchResult",
    "SearchSpace",
    "SubnetEvaluator",
    "build_discriminator",
    "build_supernet",
    "evolutionary_search",
    "exhaustive_search",
    "load_recipe",
    "mobile_generator",
    "recalibrate_batchnorm",
    "run_fast_gan_compression",
    "run_gan_compression",
]
