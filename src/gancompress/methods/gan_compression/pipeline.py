"""The two registered runners: ``gan-compression`` and ``fast-gan-compression``.

GAN Compression: distil a separable "mobile" teacher from the original (or accept one), prune it by
L1 magnitude to the supernet's largest widths, train the once-for-all supernet distilling from the
mobile teacher, search exhaustively under the budget, fine-tune, export.

Fast GAN Compression: train the supernet directly, distilling from the original teacher, then an
evolutionary search, fine-tune, export.

Each stage resumes: the training stages through the training loop's checkpoints under the run
directory, the search through its JSON cache; a run directory re-run with a new budget reuses both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ...config import recipes_dir, save_yaml
from ...errors import ConfigError, DataError
from ...export.saved import load_generator, save_generator
from ...metrics.profile import profile_generator
from ...models import Generator
from ...utils.files import atomic_write_json
from ..base import CompressionResult, MethodOptions, check_teacher_fits_data, register_method
from .distill import (
    DistillTask,
    FeatureAdapters,
    build_discriminator,
    default_points,
    discriminator_is_conditional,
    fixed_arch,
    split_batch,
    teacher_gan_mode,
)
from .recipe import GAN_MODES, GanCompressionRecipe, StageConfig, load_recipe
from .search import (
    Budget,
    HeldOut,
    LatencyTable,
    MacsTable,
    SearchResult,
    SubnetEvaluator,
    evolutionary_search,
    exhaustive_search,
    profile_arch,
)
from .search_space import SearchSpace
from .supernet import ArchSampler, build_supernet, mobile_generator, plain_teacher

METHOD_DIRS = {"gan-compression": "gan_compression", "fast-gan-compression": "fast_gan_compression"}


# -- recipes --------------------------------------------------------------------------------------
def configs_dir() -> Path:
    """The built-in recipes' folder (see :func:`gancompress.config.recipes_dir`)."""
    return recipes_dir()


def builtin_recipe(method_dir: str, quick: bool) -> Path:
    """``configs/methods/<method_dir>/fonts.yaml`` (or ``fonts_quick.yaml``): a method's built-in recipe."""
    path = configs_dir() / "methods" / method_dir / ("fonts_quick.yaml" if quick else "fonts.yaml")
    if not path.is_file():
        raise ConfigError(f"built-in recipe {path} not found; pass --recipe (or set GANCOMPRESS_CONFIGS)")
    return path


def default_recipe(method: str, quick: bool) -> Path:
    """The built-in recipe of ``method``: the fonts task, or its quick variant."""
    return builtin_recipe(METHOD_DIRS[method], quick)


# -- data -----------------------------------------------------------------------------------------
def _train_transform(recipe: GanCompressionRecipe):
    """The training crop and flip of the recipe's data section."""
    from ...data import TransformConfig

    cfg = recipe.data
    return TransformConfig(
        load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess=cfg.preprocess, flip=cfg.flip
    )


def _datasets(root: Path, recipe: GanCompressionRecipe) -> tuple[Dataset, Dataset, str]:
    """(training dataset with its random crop/flip, the same images with the evaluation transform, kind)."""
    from ...data import TransformConfig, build_dataset, detect_kind

    cfg = recipe.data
    kind = detect_kind(root, "train") if cfg.kind == "auto" else cfg.kind
    options: dict[str, Any] = {}
    if kind == "semantic" and cfg.num_classes is not None:
        options["num_classes"] = cfg.num_classes
    train = build_dataset(root, kind, "train", _train_transform(recipe), direction=cfg.direction, **options)
    eval_options = dict(options, serial=True) if kind == "unpaired" else options
    evaluation = build_dataset(
        root, kind, "train", TransformConfig.for_eval(cfg.crop_size), direction=cfg.direction, **eval_options
    )
    return train, evaluation, kind


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
    if _in_channels(teacher) != 3:
        raise ConfigError(
            f"data.unlabelled: the teacher reads {_in_channels(teacher)} input channels; "
            "unlabelled images are RGB"
        )
    unlabelled = ImageFolderDataset(cfg.unlabelled, _train_transform(recipe), what="data.unlabelled")
    note = (
        f"{len(unlabelled)} unlabelled inputs from {cfg.unlabelled}, one per training item: distilled "
        "from the teacher (its output as their target)"
    )
    return WithUnlabelled(train, unlabelled), note


def split_holdout(n: int, holdout: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): the last ``holdout`` images are kept out of training."""
    if holdout >= n:
        raise DataError(f"data.holdout is {holdout} but the training split has only {n} images")
    return list(range(n - holdout)), list(range(n - holdout, n))


def _stack(
    ds: Dataset, indices: list[int], batch_size: int, family: str
) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
    out = []
    for start in range(0, len(indices), batch_size):
        items = [ds[i] for i in indices[start : start + batch_size]]
        pairs = [split_batch(it) for it in items]
        x = torch.stack([p[0] for p in pairs])
        y = torch.stack([p[1] for p in pairs])
        out.append((x, y, {"style_image": y} if family == "munit" else {}))
    return out


def build_held_out(
    evaluation: Dataset,
    train_idx: list[int],
    held_idx: list[int],
    family: str,
    batch_size: int,
    calib_batches: int,
) -> HeldOut:
    """The held-out slice (scored) and calibration batches (for BatchNorm statistics) of the search."""
    import hashlib

    batches = _stack(evaluation, held_idx, batch_size, family)
    calib_idx = train_idx[: calib_batches * batch_size]
    calibration = [(x, kw) for x, _, kw in _stack(evaluation, calib_idx, batch_size, family)]
    names = []
    for i in held_idx:
        item = evaluation[i]
        names.append(str(item.get("A_path", item.get("path", i))))
    slice_id = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    return HeldOut(
        inputs=[b[0] for b in batches],
        reals=[b[1] for b in batches],
        extras=[b[2] for b in batches],
        slice_id=slice_id,
        calibration=calibration,
    )


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


# -- training stages ------------------------------------------------------------------------------
def _in_channels(g: Generator) -> int:
    return int(g.options.get("in_channels", g.options.get("label_channels", 3)))


def _make_task(
    student: Generator,
    teacher: Generator,
    recipe: GanCompressionRecipe,
    stage: StageConfig,
    sampler=None,
    adapters: FeatureAdapters | None = None,
    discriminator=None,
) -> tuple[DistillTask, str]:
    loss = recipe.loss
    points = tuple(loss.points) if loss.points is not None else default_points(teacher)
    if adapters is None and loss.distill > 0:
        s_ch, t_ch = student.feature_channels(), teacher.feature_channels()
        adapters = FeatureAdapters({p: s_ch[p] for p in points}, {p: t_ch[p] for p in points})
    note = "continued from the previous stage"
    out_channels = int(teacher.options.get("out_channels", 3))
    if discriminator is None and loss.gan > 0:
        discriminator, note = build_discriminator(recipe.discriminator, _in_channels(teacher), out_channels)
    conditional = recipe.discriminator.conditional
    if discriminator is not None:
        conditional = discriminator_is_conditional(discriminator, out_channels)
    vgg = None
    if loss.vgg > 0:
        vgg = _vgg_loss(loss.vgg_source)
    task = DistillTask(
        student,
        teacher,
        discriminator,
        adapters,
        loss,
        stage,
        sampler,
        vgg=vgg,
        conditional_d=conditional,
    )
    return task, note


def _vgg_loss(source: str):
    """GauGAN's VGG loss, the one its teachers train with (``training.tasks``), so ``loss.vgg`` means the same."""
    from ...metrics.vgg import VGGPerceptualLoss

    return VGGPerceptualLoss(source)


def stage_steps(stage: StageConfig, num_images: int, batch_size: int) -> tuple[int, int | None]:
    """(total steps, step where the linear LR decay starts) of a stage.

    ``max_steps`` shortens the whole schedule, keeping the constant and decaying parts in proportion.

    Example:
        >>> stage_steps(StageConfig(epochs=1, decay_epochs=3, max_steps=40), num_images=100, batch_size=1)
        (40, 10)
    """
    steps_per_epoch = max(1, num_images // batch_size)
    epochs = stage.epochs + stage.decay_epochs
    total = epochs * steps_per_epoch
    if stage.max_steps is not None:
        total = min(total, stage.max_steps)
    if not stage.decay_epochs:
        return total, None
    return total, round(total * stage.epochs / epochs)


def run_stage(
    task: DistillTask,
    train: Dataset,
    stage: StageConfig,
    run_dir: Path,
    options: MethodOptions,
    batch_size: int,
    num_workers: int,
) -> dict[str, Any]:
    """Train ``task`` with the project's one training loop (resumable from ``run_dir``)."""
    from ...training import fit

    total, decay_from = stage_steps(stage, len(train), batch_size)
    start = time.perf_counter()
    result = fit(
        task,
        train,
        run_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        max_steps=total,
        decay_from=decay_from,
        checkpoint_every=stage.checkpoint_every,
        log_every=stage.log_every,
        resume=options.resume,
        seed=options.seed,
        device=options.device,
        on_nonfinite=stage.on_nonfinite,
    )
    return {
        "steps": total,
        "trained_steps": result["step"] - result["start_step"],
        "resumed_from": result["resumed_from"],
        "wall_s": time.perf_counter() - start,
        "fit": result,
    }


# -- the runner -----------------------------------------------------------------------------------
def _latency_budget(recipe: GanCompressionRecipe, options: MethodOptions) -> bool:
    if options.budget_latency_ms is not None:
        return True
    given = (options.budget_macs, options.ratio)
    return all(v is None for v in given) and recipe.search.budget_latency_ms is not None


def make_budget(
    recipe: GanCompressionRecipe,
    options: MethodOptions,
    supernet: Generator,
    teacher_macs: int,
    run_dir: Path,
) -> Budget:
    """The budget from the command line (``--budget-macs`` / ``--budget-latency-ms`` / ``--ratio``), else the recipe."""
    size = recipe.image_size
    given = [
        (k, v)
        for k, v in (
            ("macs", options.budget_macs),
            ("latency_ms", options.budget_latency_ms),
            ("ratio", options.ratio),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise ConfigError(f"give one budget, not {[k for k, _ in given]}")
    if not given:
        s = recipe.search
        given = [
            (k, v)
            for k, v in (("macs", s.budget_macs), ("latency_ms", s.budget_latency_ms), ("ratio", s.ratio))
            if v is not None
        ]
    if not given:
        raise ConfigError(
            "no budget: pass --budget-macs, --budget-latency-ms or --ratio, or set search.budget_macs"
        )
    kind, value = given[0]
    if value <= 0:
        raise ConfigError(f"the {kind} budget must be positive, got {value}")
    if kind == "latency_ms":
        table = LatencyTable(
            supernet,
            size,
            run_dir / "latency_cache.json",
            recipe.search.latency_repeats,
            recipe.search.latency_warmup,
        )
        return Budget("latency_ms", float(value), table)
    limit = float(value) * teacher_macs if kind == "ratio" else float(value)
    return Budget("macs", limit, MacsTable(supernet, size, run_dir / "macs_cache.json"))


def _run(
    method: str, teacher: Generator, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    recipe_path = Path(options.recipe) if options.recipe else default_recipe(method, options.quick)
    recipe = load_recipe(recipe_path, options.overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(recipe, out_dir / "recipe.yaml")
    # The recipe's seed offsets --seed, as in the other methods; every stage below (weights, supernet
    # sampling, evolution, data order) draws from the sum.
    options = dataclasses.replace(options, seed=options.seed + recipe.seed)
    torch.manual_seed(options.seed)
    base_teacher = plain_teacher(teacher)
    space = SearchSpace.for_generator(
        teacher, recipe.supernet.search_space, f"{recipe_path}: supernet.search_space"
    )
    train_full, evaluation, kind = _datasets(data, recipe)
    check_teacher_fits_data(teacher, evaluation, data)
    train_idx, held_idx = split_holdout(len(train_full), recipe.data.holdout)
    train: Dataset = Subset(train_full, train_idx)
    bs, nw = recipe.data.batch_size, recipe.data.num_workers
    notes: dict[str, str] = {}
    if recipe.data.unlabelled is not None:
        train, notes["unlabelled"] = with_unlabelled(train, recipe, kind, teacher)
    stages: dict[str, Any] = {}
    if kind == "unpaired":
        recipe, notes["unpaired"] = pseudo_pairs(recipe)
        save_yaml(recipe, out_dir / "recipe.yaml")
    recipe, gan_note = match_teacher_gan_mode(recipe)
    if gan_note:
        notes["gan_mode"] = gan_note
        save_yaml(recipe, out_dir / "recipe.yaml")

    # An unreachable budget fails now, not after training (the search checks again on the real supernet).
    size = recipe.image_size
    teacher_prof = profile_arch(type(teacher), teacher.options, teacher.arch, size)
    mt = recipe.mobile_teacher
    if method == "fast-gan-compression" or (mt.path is None and mt.base_width is None):
        separable = recipe.supernet.separable if method == "fast-gan-compression" else None
        with torch.device("meta") if not _latency_budget(recipe, options) else contextlib.nullcontext():
            probe = build_supernet(teacher, space, separable)
        make_budget(recipe, options, probe, teacher_prof.macs_paper, out_dir).check_reachable(space)
    # so is a missing segmenter for an mIoU search
    segmentation = search_segmenter(recipe, data) if recipe.search.metric == "miou" else {}

    # 1. GAN Compression: the mobile teacher, whose pruned weights start the supernet
    distill_from = base_teacher
    init_from = None
    if method == "gan-compression":
        t = time.perf_counter()
        mt = recipe.mobile_teacher
        if mt.path is not None:
            mobile = load_generator(mt.path)
            notes["mobile_teacher"] = f"loaded from {mt.path}"
        elif teacher.family == "resnet" and not teacher.options.get("separable") and mt.train.enabled:
            mobile = mobile_generator(base_teacher, mt.base_width)
            task, notes["mobile_teacher_discriminator"] = _make_task(mobile, base_teacher, recipe, mt.train)
            stages["mobile_teacher"] = run_stage(
                task, train, mt.train, out_dir / "mobile_teacher", options, bs, nw
            )
            save_generator(
                mobile,
                out_dir / "mobile_teacher" / "generator",
                extra={"method": method, "stage": "mobile_teacher"},
            )
            notes["mobile_teacher"] = "separable ResNet distilled from the teacher"
        else:
            mobile = base_teacher
            notes["mobile_teacher"] = (
                "the teacher itself (its family has no separable variant, it is separable already, "
                "or mobile_teacher.train is empty)"
            )
        mobile = mobile.eval().requires_grad_(False)
        distill_from = mobile
        init_from = mobile
        wall["mobile_teacher"] = time.perf_counter() - t

    # 2. the once-for-all supernet
    t = time.perf_counter()
    supernet = build_supernet(teacher, space, recipe.supernet.separable, init_from=init_from)
    sampler = ArchSampler(space, recipe.supernet.sampling, options.seed)
    task, notes["discriminator"] = _make_task(supernet, distill_from, recipe, recipe.supernet.train, sampler)
    if recipe.supernet.train.enabled:
        stages["supernet"] = run_stage(
            task, train, recipe.supernet.train, out_dir / "supernet", options, bs, nw
        )
    save_generator(
        supernet,
        out_dir / "supernet" / "generator",
        extra={"method": method, "stage": "supernet", "search_space": str(space)},
    )
    wall["supernet"] = time.perf_counter() - t

    # 3. search
    t = time.perf_counter()
    budget = make_budget(recipe, options, supernet, teacher_prof.macs_paper, out_dir)
    supernet.eval()
    held = build_held_out(
        evaluation,
        train_idx,
        held_idx,
        teacher.family,
        recipe.search.eval_batch_size,
        recipe.search.calibration_batches,
    )
    evaluator = SubnetEvaluator(
        supernet,
        held,
        recipe.search.metric,
        target=recipe.search.metric_target,
        teacher=base_teacher,
        cache_path=out_dir / "search_cache.json",
        feature_metric=feature_metric_fn() if recipe.search.metric in ("fid", "kid") else None,
        extractor=recipe.search.extractor,
        **segmentation,
    )
    s = recipe.search
    if s.strategy == "exhaustive":
        found = exhaustive_search(space, budget, evaluator, s.max_candidates, progress=True)
    else:
        found = evolutionary_search(
            space,
            budget,
            evaluator,
            population=s.population,
            generations=s.generations,
            parent_ratio=s.parent_ratio,
            mutation_ratio=s.mutation_ratio,
            mutate_prob=s.mutate_prob,
            seed=s.seed + options.seed,
            progress=True,
        )
    atomic_write_json(out_dir / "search.json", found.to_dict())
    wall["search"] = time.perf_counter() - t

    # 4. fine-tune the chosen subnet and export it
    t = time.perf_counter()
    student = supernet.extract_subnet(found.arch).train()
    if recipe.finetune.enabled:
        adapters = task.adapters.narrowed(student.feature_channels()) if task.adapters is not None else None
        ft_task, _ = _make_task(
            student, distill_from, recipe, recipe.finetune, fixed_arch(None), adapters, task.discriminator
        )
        # one run directory per chosen arch: a re-run with a new budget must not resume another subnet
        ft_dir = out_dir / "finetune" / str(found.arch)
        stages["finetune"] = run_stage(ft_task, train, recipe.finetune, ft_dir, options, bs, nw)
    student.eval()
    wall["finetune"] = time.perf_counter() - t
    return _export(
        method, teacher, student, found, teacher_prof, recipe, out_dir, wall, t0, notes, stages, kind, space
    )


def _export(
    method,
    teacher,
    student,
    found: SearchResult,
    teacher_prof,
    recipe,
    out_dir,
    wall,
    t0,
    notes,
    stages,
    kind,
    space,
) -> CompressionResult:
    size = recipe.image_size
    student_prof = profile_generator(student, size)
    if found.budget_kind == "macs" and student_prof.macs_paper != int(found.cost):
        raise ConfigError(
            f"exported subnet {found.arch} profiles at {student_prof.macs_paper} MACs, the search used {found.cost}"
        )
    export_dir = save_generator(
        student,
        out_dir / "student",
        extra={"method": method, "teacher_macs": teacher_prof.macs_paper, "arch": str(found.arch)},
    )
    wall["total"] = time.perf_counter() - t0
    summary = {
        "method": method,
        "task": recipe.task,
        "data_kind": kind,
        "image_size": list(size),
        "search_space": str(space),
        "teacher": {
            "arch": str(teacher.arch),
            "params": teacher_prof.params,
            "macs_paper": teacher_prof.macs_paper,
            "macs_true": teacher_prof.macs_true,
        },
        "student": {
            "arch": str(found.arch),
            "params": student_prof.params,
            "macs_paper": student_prof.macs_paper,
            "macs_true": student_prof.macs_true,
        },
        "macs_ratio": teacher_prof.macs_paper / max(student_prof.macs_paper, 1),
        "search": {k: v for k, v in found.to_dict().items() if k != "history"},
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "fit"} for k, v in stages.items()},
        "wall_time_s": wall,
        "notes": notes,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    atomic_write_json(out_dir / "gan_compression_summary.json", summary)
    return CompressionResult(
        method=method,
        generator=student,
        summary=summary,
        artifacts={
            "student": str(export_dir),
            "search": str(out_dir / "search.json"),
            "summary": str(out_dir / "gan_compression_summary.json"),
        },
    )


@register_method("gan-compression", status="available")
def run_gan_compression(
    teacher: Generator, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    """GAN Compression: mobile teacher → pruned supernet → exhaustive search → fine-tune → export.

    Example:
        >>> compress("gan-compression", teacher, root, "runs/gc", MethodOptions(ratio=0.1))
    """
    return _run("gan-compression", teacher, Path(data), Path(out_dir), options)


@register_method("fast-gan-compression", status="available")
def run_fast_gan_compression(
    teacher: Generator, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    """Fast GAN Compression: supernet distilled from the teacher → evolutionary search → fine-tune → export.

    Example:
        >>> compress("fast-gan-compression", teacher, root, "runs/fgc", MethodOptions(budget_macs=3e9))
    """
    return _run("fast-gan-compression", teacher, Path(data), Path(out_dir), options)
