"""The registered ``coronet`` runner: prune while training, generate once, fine-tune, export.

1. A :class:`HyperGenerator` of the teacher's family and widths (fresh weights: the GAN objective
   needs no teacher) trains with the pix2pix or CycleGAN objective, optionally distilling from the
   teacher; after each step the latents take a proximal step and the masks follow them, until the
   MACs target is reached (then pruning stops) or the stage ends (then the weakest units go).
2. The kernels are generated once, the hypernetwork is dropped and the pruned channels are removed
   (:func:`gancompress.pruning.prune_generator`): a plain generator of the same family.
3. That generator is fine-tuned with the same objective and exported.

Both training stages go through :func:`gancompress.training.fit` and resume from their run folders.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ...config import save_yaml
from ...errors import CheckpointError, ConfigError
from ...export.saved import load_generator, save_generator
from ...metrics.profile import profile_generator
from ...models import Generator
from ...utils.files import atomic_write_json
from ..base import (
    CompressionResult,
    MethodOptions,
    check_teacher_fits_data,
    register_method,
    resolve_macs_target,
)
from ..gan_compression.distill import build_discriminator
from ..gan_compression.pipeline import builtin_recipe, run_stage, split_holdout
from ..gan_compression.search import MacsTable, profile_arch
from ..gan_compression.supernet import plain_teacher
from .control import PruneController
from .hypernet import SUPPORTED_FAMILIES, HyperGenerator
from .recipe import CoronetRecipe, load_recipe
from .task import CoronetTask, LatentAdapters, feature_groups


def default_recipe(quick: bool) -> Path:
    """The built-in recipe: the fonts task, or its quick variant."""
    return builtin_recipe("coronet", quick)


def target_macs(recipe: CoronetRecipe, options: MethodOptions, teacher_macs: int) -> tuple[str, float, float]:
    """(kind, given value, target in paper MACs) from ``--budget-macs`` / ``--ratio``, else the recipe."""
    target = resolve_macs_target(
        "coronet", options, recipe.prune.budget_macs, recipe.prune.ratio, teacher_macs
    )
    if target is None:
        raise ConfigError("no target: pass --budget-macs or --ratio, or set prune.budget_macs / prune.ratio")
    return target


def _datasets(root: Path, recipe: CoronetRecipe) -> tuple[Dataset, Dataset, str]:
    """(training dataset with random crop/flip, the same images for evaluation, kind)."""
    from ...data import TransformConfig, build_dataset, detect_kind

    cfg = recipe.data
    kind = detect_kind(root, "train") if cfg.kind == "auto" else cfg.kind
    train_tf = TransformConfig(
        load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess=cfg.preprocess, flip=cfg.flip
    )
    train = build_dataset(root, kind, "train", train_tf, direction=cfg.direction)
    extra = {"serial": True} if kind == "unpaired" else {}
    evaluation = build_dataset(
        root, kind, "train", TransformConfig.for_eval(cfg.crop_size), direction=cfg.direction, **extra
    )
    return train, evaluation, kind


def _objective(recipe: CoronetRecipe, kind: str) -> str:
    if recipe.loss.objective != "auto":
        return recipe.loss.objective
    return "cyclegan" if kind == "unpaired" else "pix2pix"


def student_base(teacher: Generator, separable: bool | None) -> Generator:
    """A fresh network of the teacher's family and widths (separable ResNet blocks on request)."""
    options = dict(teacher.options)
    if separable is not None:
        if teacher.family != "resnet":
            raise ConfigError(f"separable: family {teacher.family!r} has no separable variant")
        options["separable"] = separable
    return type(teacher).from_options(teacher.arch, options)


def _reverse_generator(teacher: Generator, recipe: CoronetRecipe) -> Generator:
    """CycleGAN's B→A generator: the teacher's family at its widths, image channels swapped."""
    if recipe.reverse_init is not None:
        reverse = load_generator(recipe.reverse_init)
        if reverse.options.get("in_channels") != teacher.options.get("out_channels"):
            raise ConfigError(
                f"reverse_init: {recipe.reverse_init} does not map the teacher's output domain back"
            )
        return reverse.train()
    options = dict(teacher.options)
    options["in_channels"], options["out_channels"] = options["out_channels"], options["in_channels"]
    return type(teacher).from_options(teacher.arch, options)


@torch.no_grad()
def held_out_quality(
    generator: Generator, evaluation: Dataset, indices: list[int], batch: int = 8
) -> dict[str, float]:
    """Mean PSNR (dB) and L1 against the ground truth on held-out training images (paired data)."""
    from ...metrics.paired import l1, psnr
    from ..gan_compression.distill import split_batch

    if not indices:
        return {}
    generator.eval()
    device = next(generator.parameters()).device
    psnrs, l1s = [], []
    for start in range(0, len(indices), batch):
        pairs = [split_batch(evaluation[i]) for i in indices[start : start + batch]]
        x = torch.stack([p[0] for p in pairs]).to(device)
        y = torch.stack([p[1] for p in pairs]).to(device)
        fake = generator(x)
        psnrs.append(psnr(fake, y))
        l1s.append(l1(fake, y))
    return {
        "psnr": float(torch.cat(psnrs).mean()),
        "l1": float(torch.cat(l1s).mean()),
        "images": len(indices),
    }


def _check_same_target(run_dir: Path, target: float, resume: bool) -> None:
    """Refuse to resume a pruning stage that was aiming at another target (its masks would be wrong)."""
    import json

    path = run_dir / "target.json"
    if resume and path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path} is not readable JSON ({exc}); delete it, or use --no-resume"
            ) from None
        previous = previous.get("target_macs") if isinstance(previous, dict) else None
        if isinstance(previous, bool) or not isinstance(previous, int | float):
            raise CheckpointError(f"{path} holds no target_macs number; delete it, or use --no-resume")
        if previous != target:
            raise ConfigError(
                f"{run_dir} was pruned towards {previous:.6g} MACs, not {target:.6g}: "
                "use another --out, or --no-resume to start over"
            )
    atomic_write_json(path, {"target_macs": target})


def _prof(p) -> dict[str, int]:
    return {"params": p.params, "macs_paper": p.macs_paper, "macs_true": p.macs_true}


@register_method("coronet", status="available")
def run_coronet(teacher: Generator, data: Path, out_dir: Path, options: MethodOptions) -> CompressionResult:
    """CoroNetGAN: hypernetwork pruning while the GAN trains, to a MACs target; fine-tune; export.

    Example:
        >>> compress("coronet", teacher, root, "runs/coronet", MethodOptions(ratio=0.1))
    """
    t0 = time.perf_counter()
    data, out_dir = Path(data), Path(out_dir)
    if teacher.family not in SUPPORTED_FAMILIES:
        raise ConfigError(f"coronet supports the families {list(SUPPORTED_FAMILIES)}, not {teacher.family!r}")
    recipe_path = Path(options.recipe) if options.recipe else default_recipe(options.quick)
    recipe = load_recipe(recipe_path, options.overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(recipe, out_dir / "recipe.yaml")
    torch.manual_seed(options.seed + recipe.seed)
    wall: dict[str, float] = {}
    notes: dict[str, str] = {}

    frozen_teacher = plain_teacher(teacher)
    size = recipe.image_size
    teacher_prof = profile_arch(type(teacher), teacher.options, teacher.arch, size)
    kind_given, value, target = target_macs(recipe, options, teacher_prof.macs_paper)

    train_full, evaluation, kind = _datasets(data, recipe)
    check_teacher_fits_data(teacher, evaluation, data)
    train_idx, held_idx = split_holdout(len(train_full), recipe.data.holdout)
    train = Subset(train_full, train_idx)
    objective = _objective(recipe, kind)
    if objective == "pix2pix" and kind == "unpaired":
        raise ConfigError("loss.objective pix2pix needs paired data; this dataset is unpaired (use cyclegan)")
    bs, nw = recipe.data.batch_size, recipe.data.num_workers

    # 1. prune while training
    t = time.perf_counter()
    base = student_base(teacher, recipe.separable)
    hyper = HyperGenerator(base, recipe.hypernet.embedding_dim, recipe.hypernet.latent_std)
    macs_table = MacsTable(base, size, out_dir / "macs_cache.json")
    groups = hyper.groups
    controller = PruneController(
        hyper,
        macs_table,
        target,
        threshold=recipe.prune.threshold,
        regularization=recipe.prune.regularization,
        min_widths=recipe.min_widths(groups),
        groups=recipe.prune.groups,
    )
    loss = recipe.loss
    in_ch = int(teacher.options.get("in_channels", 3))
    out_ch = int(teacher.options.get("out_channels", 3))
    d_cfg = dataclasses.replace(
        recipe.discriminator, conditional=recipe.discriminator.conditional and objective == "pix2pix"
    )
    disc, notes["discriminator"] = (
        build_discriminator(d_cfg, in_ch, out_ch) if loss.gan > 0 else (None, "none")
    )
    reverse = disc_a = None
    if objective == "cyclegan":
        reverse = _reverse_generator(teacher, recipe)
        if loss.gan > 0:
            disc_a, _ = build_discriminator(dataclasses.replace(d_cfg, init_from=None), out_ch, in_ch)
        notes["cyclegan"] = (
            "the A→B generator is pruned; a B→A generator of the teacher's widths trains alongside for the "
            "cycle and identity losses and is not exported"
        )
    adapters = None
    if loss.distill_features > 0:
        points = tuple(loss.points) if loss.points is not None else tuple(base.feature_points)
        fg = feature_groups(base)
        s_ch, t_ch = base.feature_channels(), frozen_teacher.feature_channels()
        adapters = LatentAdapters({p: s_ch[p] for p in points}, {p: t_ch[p] for p in points}, fg)
    task = CoronetTask(
        hyper,
        disc,
        loss,
        recipe.prune.train,
        objective=objective,
        teacher=frozen_teacher if (loss.distill_output > 0 or loss.distill_features > 0) else None,
        controller=controller,
        lr_latent=recipe.prune.lr_latent,
        reverse=reverse,
        discriminator_a=disc_a,
        adapters=adapters,
        conditional_d=d_cfg.conditional,
    )
    stages: dict[str, Any] = {}
    _check_same_target(out_dir / "prune", target, options.resume)
    stages["prune"] = run_stage(task, train, recipe.prune.train, out_dir / "prune", options, bs, nw)
    trained_stop = bool(controller.stopped)
    controller.finish(hyper)  # deterministic: a resumed run takes the same decision
    pruning = controller.report(hyper)
    pruning["reached_during_training"] = trained_stop
    wall["prune"] = time.perf_counter() - t

    # 2. generate once, drop the hypernetwork, remove the pruned channels
    t = time.perf_counter()
    keep = hyper.keep_indices()
    student = hyper.extract().train()
    del hyper, task
    wall["extract"] = time.perf_counter() - t

    # 3. fine-tune the plain generator with the same objective
    t = time.perf_counter()
    if recipe.finetune.enabled:
        ft = CoronetTask(
            student,
            disc,
            loss,
            recipe.finetune,
            objective=objective,
            teacher=frozen_teacher if (loss.distill_output > 0 or loss.distill_features > 0) else None,
            reverse=reverse,
            discriminator_a=disc_a,
            adapters=adapters.narrowed(keep) if adapters is not None else None,
            conditional_d=d_cfg.conditional,
        )
        stages["finetune"] = run_stage(ft, train, recipe.finetune, out_dir / "finetune", options, bs, nw)
    student.eval()
    wall["finetune"] = time.perf_counter() - t

    student_prof = profile_generator(student, size)
    if student_prof.macs_paper != pruning["reached_macs"]:
        raise ConfigError(
            f"exported generator {student.arch} profiles at {student_prof.macs_paper} MACs, "
            f"pruning reported {pruning['reached_macs']}"
        )
    export_dir = save_generator(
        student,
        out_dir / "student",
        extra={"method": "coronet", "teacher_macs": teacher_prof.macs_paper, "arch": str(student.arch)},
    )
    quality = held_out_quality(student, evaluation, held_idx) if kind != "unpaired" else {}
    wall["total"] = time.perf_counter() - t0
    summary = {
        "method": "coronet",
        "task": recipe.task,
        "data_kind": kind,
        "objective": objective,
        "image_size": list(size),
        "teacher": {"arch": str(teacher.arch), **_prof(teacher_prof)},
        "student": {
            "arch": str(student.arch),
            "separable": bool(student.options.get("separable", False)),
            **_prof(student_prof),
        },
        "macs_ratio": teacher_prof.macs_paper / max(student_prof.macs_paper, 1),
        "target": {"given": kind_given, "value": value, "macs": target},
        "pruning": pruning,
        "held_out": quality,
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "fit"} for k, v in stages.items()},
        "wall_time_s": wall,
        "notes": notes,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    atomic_write_json(out_dir / "coronet_summary.json", summary)
    return CompressionResult(
        method="coronet",
        generator=student,
        summary=summary,
        artifacts={"student": str(export_dir), "summary": str(out_dir / "coronet_summary.json")},
    )
