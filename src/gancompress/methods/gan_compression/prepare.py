"""What GAN Compression adapts before training: unlabelled inputs, unpaired data (pseudo-pairs), the
discriminator's GAN objective, the search's segmenter and feature metric, the VGG loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ...errors import ConfigError
from ...models import Generator
from ..common.data import train_transform
from ..common.discriminator import teacher_gan_mode
from ..common.teacher import in_channels
from .recipe import GAN_MODES, GanCompressionRecipe


def with_unlabelled(
    train: Dataset, recipe: GanCompressionRecipe, kind: str, teacher: Generator
) -> tuple[Dataset, str]:
    """``train`` with one input of the ``data.unlabelled`` folder beside each item (and a note).

    Those inputs get the training crop and flip; the student distils from the teacher on them, with
    the teacher's output as their reconstruction target (pseudo-pairs) and no discriminator term.
    """
    from ...data.unlabelled import ImageFolderDataset, WithUnlabelled

    cfg = recipe.data
    if kind == "semantic" or teacher.family == "munit":
        raise ConfigError(
            f"data.unlabelled: only image-to-image teachers take unlabelled images (this one is "
            f"{teacher.family} on {kind} data: its inputs are label maps or need a style image)"
        )
    if in_channels(teacher) != 3:
        raise ConfigError(
            f"data.unlabelled: the teacher reads {in_channels(teacher)} input channels; "
            "unlabelled images are RGB"
        )
    unlabelled = ImageFolderDataset(cfg.unlabelled, train_transform(recipe.data), what="data.unlabelled")
    note = (
        f"{len(unlabelled)} unlabelled inputs from {cfg.unlabelled}, one per training item: distilled "
        "from the teacher (its output as their target)"
    )
    return WithUnlabelled(train, unlabelled), note


def pseudo_pairs(recipe: GanCompressionRecipe) -> tuple[GanCompressionRecipe, str]:
    """The recipe for unpaired data: the teacher's outputs are the targets (pseudo-pairs, no cycle
    loss, as the paper), and the discriminator judges images alone (an A image has no true B)."""
    loss = dataclasses.replace(recipe.loss, recon_target="teacher")
    search = dataclasses.replace(recipe.search, metric_target="teacher")
    disc = dataclasses.replace(recipe.discriminator, conditional=False)
    changed = [
        name
        for name, old, new in (
            ("loss.recon_target=teacher", recipe.loss, loss),
            ("search.metric_target=teacher", recipe.search, search),
            ("discriminator.conditional=false", recipe.discriminator, disc),
        )
        if old != new
    ]
    note = "unpaired data: the student learns from the teacher's outputs (pseudo-pairs)"
    if changed:
        note += f"; set {', '.join(changed)}"
    return dataclasses.replace(recipe, loss=loss, search=search, discriminator=disc), note


def match_teacher_gan_mode(recipe: GanCompressionRecipe) -> tuple[GanCompressionRecipe, str | None]:
    """The recipe with ``loss.gan_mode`` set to the objective the teacher's discriminator was trained
    with, when the student's discriminator starts from it and the two differ (with a note saying so).

    A discriminator keeps the logit scale of its own objective: one trained with BCE starts beyond
    both hinge margins, so a hinge loss gives it no gradient at all and it never adapts to the student.
    """
    if recipe.loss.gan <= 0 or recipe.discriminator.init_from is None:
        return recipe, None
    mode = teacher_gan_mode(recipe.discriminator.init_from)
    if mode is None or mode == recipe.loss.gan_mode or mode not in GAN_MODES:
        return recipe, None
    note = (
        f"loss.gan_mode={mode} (the recipe said {recipe.loss.gan_mode}): the discriminator starts from the "
        f"teacher's, which was trained with {mode}"
    )
    return dataclasses.replace(recipe, loss=dataclasses.replace(recipe.loss, gan_mode=mode)), note


def search_segmenter(recipe: GanCompressionRecipe, data: Path) -> dict[str, Any]:
    """The segmenter scoring mIoU and its class count: ``search.segmenter``, else the dataset's own."""
    from ...data.metadata import read_metadata
    from ...metrics.segmentation import list_segmenters, load_segmenter

    name = recipe.search.segmenter
    if name is None:
        dataset = (read_metadata(data) or {}).get("name")
        if dataset not in list_segmenters():
            raise ConfigError(
                f"search.metric miou: no shipped segmenter for dataset {dataset or data}; set search.segmenter "
                f"to a segmenter .json (shipped: {', '.join(list_segmenters()) or 'none'}) or use psnr / fid"
            )
        name = dataset
    segmenter = load_segmenter(name)
    num_classes = getattr(segmenter.model, "num_classes", None) or segmenter.info.get("num_classes")
    return {"segmenter": segmenter, "num_classes": int(num_classes)}


def feature_metric_fn():
    """FID / KID on the domain feature extractor of ``gancompress.metrics`` (None when not available)."""
    try:
        from ...metrics import quality
    except ImportError:
        return None
    return quality.feature_metric_for_search  # type: ignore[attr-defined]


def _vgg_loss(source: str):
    """GauGAN's VGG loss, the one its teachers train with (``training.tasks``), so ``loss.vgg`` means the same."""
    from ...metrics.vgg import VGGPerceptualLoss

    return VGGPerceptualLoss(source)
