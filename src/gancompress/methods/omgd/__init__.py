"""OMGD (Ren et al., ICCV 2021): online multi-granularity distillation for GAN compression.

A wider and a deeper teacher learn the task online, beside the student, with the pix2pix or
CycleGAN objective; the student never sees a discriminator: it learns only from the teachers'
outputs (SSIM, VGG16 perceptual and style terms, total variation) and from the wider teacher's
intermediate features (channel-wise distillation). Its widths are the teacher's family scaled to a
MACs target, so the trained student is saved as it is.
"""

from . import pipeline  # noqa: F401  (registers the runner)
from .deep import DeepResnet, DeepUnet, deep_teacher
from .losses import ChannelDistillation, output_terms, ssim, total_variation
from .pipeline import Omgd, run_omgd, widths_for_target
from .recipe import OmgdLoss, OmgdRecipe, load_recipe
from .task import OmgdTask, init_normal

__all__ = [
    "ChannelDistillation",
    "DeepResnet",
    "DeepUnet",
    "Omgd",
    "OmgdLoss",
    "OmgdRecipe",
    "OmgdTask",
    "deep_teacher",
    "init_normal",
    "load_recipe",
    "output_terms",
    "run_omgd",
    "ssim",
    "total_variation",
    "widths_for_target",
]
