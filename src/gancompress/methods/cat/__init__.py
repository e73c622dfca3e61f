"""CAT (Jin et al., CVPR 2021): an inception-residual teacher, one-step pruning of its normalisation
scales to a MACs target, and kernel-alignment distillation of intermediate features (no adapters)."""

from . import pipeline  # noqa: F401  (registers the method)
from .ka import kernel_alignment
from .pipeline import Cat
from .prune import official_init_, remove_channels, scales, search_threshold, widths_at
from .recipe import CatLoss, CatRecipe, InceptionTeacherConfig, PruneConfig, load_recipe
from .task import CatTask

__all__ = [
    "Cat",
    "CatLoss",
    "CatRecipe",
    "CatTask",
    "InceptionTeacherConfig",
    "PruneConfig",
    "kernel_alignment",
    "load_recipe",
    "official_init_",
    "remove_channels",
    "scales",
    "search_threshold",
    "widths_at",
]
