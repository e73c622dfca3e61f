"""GAN Slimming (Wang et al., ECCV 2020): distillation, channel pruning and quantisation in one minimax.

The student is the teacher with a learnable scale γ on every normalisation layer; an L1 penalty on γ,
applied as a proximal soft-threshold after each step, switches channels off; weights and activations
can be fake-quantised (straight-through estimator) while it trains. The switched-off channels are
then removed from every coupled layer, leaving a plain generator of the teacher's family.
"""

from . import pipeline  # noqa: F401  (registers the runner)
from .pipeline import run_gan_slimming
from .quant import QuantizedGenerator, WeightQuantizer, conv_input_plan, quantize_ste
from .recipe import GanSlimmingRecipe, load_recipe
from .slim import (
    ScaleGroup,
    alive_channels,
    remove_off_channels,
    scale_groups,
    slimmable_student,
    soft_threshold_,
    switch_off_dead_,
    threshold_to_budget,
    widths_at,
)
from .task import GanSlimmingTask, OutputDistillation, gram_matrix

__all__ = [
    "GanSlimmingRecipe",
    "GanSlimmingTask",
    "OutputDistillation",
    "QuantizedGenerator",
    "ScaleGroup",
    "WeightQuantizer",
    "alive_channels",
    "conv_input_plan",
    "gram_matrix",
    "load_recipe",
    "quantize_ste",
    "remove_off_channels",
    "run_gan_slimming",
    "scale_groups",
    "slimmable_student",
    "soft_threshold_",
    "switch_off_dead_",
    "threshold_to_budget",
    "widths_at",
]
