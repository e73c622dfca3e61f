"""The registered ``gan-slimming`` runner: slim while distilling, remove channels, fine-tune, export.

1. The student starts as the teacher with a learnable γ/β on every norm, optionally fake-quantised
   (GS-8). It trains with the GAN Slimming objective; γ takes proximal steps towards sparsity.
2. With a MACs target (``--budget-macs`` / ``--ratio``), the proximal step stops before the live
   widths fall below the target (so a large ρ cannot overshoot it), and a final global threshold on
   |γ| switches off the weakest channels until the target is met; without one, ρ alone decides.
3. The γ = 0 channels are removed from every coupled layer (exactly: the output is checked), giving a
   plain generator of the same family at smaller widths.
4. It is fine-tuned with the same objective (still fake-quantised for GS-8) and exported: the saved
   generator (GS-8: weights baked on their int8 grid), an fp32 ONNX graph and an int8 QDQ ONNX graph
   calibrated on training inputs and run in ONNX Runtime.

Both training stages go through :func:`gancompress.training.fit` and resume from their run folders.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ...config import save_yaml
from ...errors import BudgetError, ConfigError
from ...export.saved import save_generator
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
from ..gan_compression.distill import build_discriminator, split_batch
from ..gan_compression.pipeline import builtin_recipe, run_stage, split_holdout
from ..gan_compression.search import MacsTable, profile_arch
from ..gan_compression.supernet import plain_teacher
from .quant import QuantizedGenerator
from .recipe import GanSlimmingRecipe, load_recipe
from .slim import (
    alive_channels,
    check_supported,
    remove_off_channels,
    scale_groups,
    slimmable_student,
    threshold_to_budget,
    widths_at,
)
from .task import GanSlimmingTask, OutputDistillation


def default_recipe(quick: bool) -> Path:
    """The built-in recipe: the fonts task, or its quick variant."""
    return builtin_recipe("gan_slimming", quick)


def resolve_target(
    recipe: GanSlimmingRecipe, options: MethodOptions, teacher_macs: int
) -> tuple[str, float, float] | None:
    """(kind, given value, target in paper MACs) from ``--budget-macs`` / ``--ratio``, else the recipe; None: ρ decides."""
    return resolve_macs_target(
        "gan-slimming", options, recipe.slim.budget_macs, recipe.slim.ratio, teacher_macs
    )


def _datasets(root: Path, recipe: GanSlimmingRecipe) -> tuple[Dataset, Dataset, str]:
    """(training dataset with random crop/flip, the same images for evaluation, kind)."""
    from ...data import TransformConfig, build_dataset, detect_kind

    cfg = recipe.data
    kind = detect_kind(root, "train") if cfg.kind == "auto" else cfg.kind
    if kind == "semantic":
        raise ConfigError(
            "gan-slimming supports image-to-image data (paired or unpaired), not semantic label maps"
        )
    train_tf = TransformConfig(
        load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess=cfg.preprocess, flip=cfg.flip
    )
    train = build_dataset(root, kind, "train", train_tf, direction=cfg.direction)
    extra = {"serial": True} if kind == "unpaired" else {}
    evaluation = build_dataset(
        root, kind, "train", TransformConfig.for_eval(cfg.crop_size), direction=cfg.direction, **extra
    )
    return train, evaluation, kind


def held_out_inputs(evaluation: Dataset, indices: list[int], batch: int = 8) -> list[torch.Tensor]:
    """The held-out generator inputs, in batches."""
    out = []
    for start in range(0, len(indices), batch):
        out.append(torch.stack([split_batch(evaluation[i])[0] for i in indices[start : start + batch]]))
    return out


@torch.no_grad()
def quality_vs_teacher(run, teacher: Generator, inputs: list[torch.Tensor]) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and L1 of ``run(x)`` against the teacher's output on held-out inputs."""
    from ...metrics.paired import l1, psnr, ssim

    if not inputs:
        return {}
    teacher.eval()
    p, s, d = [], [], []
    for x in inputs:
        ref, out = teacher(x), run(x)
        p.append(psnr(out, ref))
        s.append(ssim(out, ref))
        d.append(l1(out, ref))
    return {
        "psnr": float(torch.cat(p).mean()),
        "ssim": float(torch.cat(s).mean()),
        "l1": float(torch.cat(d).mean()),
        "images": sum(x.shape[0] for x in inputs),
    }


def _prof(p) -> dict[str, int]:
    return {"params": p.params, "macs_paper": p.macs_paper, "macs_true": p.macs_true}


def _make_task(
    student, teacher, disc, recipe, stage, distillation, groups=None, rho=0.0, target_macs=None, macs=None
) -> GanSlimmingTask:
    return GanSlimmingTask(
        student,
        teacher,
        disc,
        recipe.loss,
        stage,
        distillation=distillation,
        groups=groups,
        rho=rho,
        lr_gamma=recipe.slim.lr_gamma,
        momentum=recipe.slim.momentum,
        weight_decay=recipe.weight_decay,
        target_macs=target_macs,
        macs=macs,
    )


def export_int8(
    student: Generator, out_dir: Path, data: Path, size: int, count: int
) -> tuple[dict[str, str], Any]:
    """fp32 ONNX and int8 QDQ ONNX of ``student``; returns the paths and an ONNX Runtime session of the int8 one."""
    from ...export.int8 import calibration_inputs, quantize_onnx_int8
    from ...export.onnx import export_onnx, ort_session

    fp32 = export_onnx(student, out_dir / "student.onnx", size=(size, size))
    calib = calibration_inputs(student, data, count=count, size=size)
    int8 = quantize_onnx_int8(fp32, out_dir / "student.int8.onnx", calib)
    return {"onnx_fp32": str(fp32), "onnx_int8": str(int8)}, ort_session(int8)


@register_method("gan-slimming", status="available")
def run_gan_slimming(
    teacher: Generator, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    """GAN Slimming: distillation + γ sparsity + quantisation in one minimax, then channel removal.

    Example:
        >>> compress("gan-slimming", teacher, root, "runs/gs8", MethodOptions(bits=8, budget_macs=1e8))
    """
    from ...export.onnx import run_session

    t0 = time.perf_counter()
    data, out_dir = Path(data), Path(out_dir)
    check_supported(teacher)
    recipe_path = Path(options.recipe) if options.recipe else default_recipe(options.quick)
    recipe = load_recipe(recipe_path, options.overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(recipe, out_dir / "recipe.yaml")
    rho = recipe.slim.rho if options.rho is None else float(options.rho)
    bits = recipe.quant.bits if options.bits is None else int(options.bits)
    if rho < 0:
        raise ConfigError(f"--rho must be non-negative, got {rho}")
    if not 2 <= bits <= 32:
        raise ConfigError(f"--bits must be in [2, 32], got {bits}")
    torch.manual_seed(options.seed + recipe.seed)
    wall: dict[str, float] = {}
    notes: dict[str, str] = {}

    frozen_teacher = plain_teacher(teacher)
    size = recipe.image_size
    teacher_prof = profile_arch(type(teacher), teacher.options, teacher.arch, size)
    target = resolve_target(recipe, options, teacher_prof.macs_paper)
    train_full, evaluation, kind = _datasets(data, recipe)
    check_teacher_fits_data(teacher, evaluation, data)
    train_idx, held_idx = split_holdout(len(train_full), recipe.data.holdout)
    train = Subset(train_full, train_idx)
    bs, nw = recipe.data.batch_size, recipe.data.num_workers

    vgg = None
    if recipe.loss.distill == "vgg":
        from ...metrics.vgg import load_vgg16_features

        layers = tuple(dict.fromkeys((recipe.loss.content_layer, "relu1_2", "relu2_2", "relu3_3", "relu4_3")))
        vgg = load_vgg16_features(recipe.loss.vgg_source, layers=layers)
        notes["distill"] = f"VGG16 content ({recipe.loss.content_layer}) + Gram style loss on {vgg.name}"
    distillation = OutputDistillation(
        recipe.loss.distill, vgg, recipe.loss.content_layer, recipe.loss.style_weight
    )
    in_ch = int(teacher.options.get("in_channels", 3))
    out_ch = int(teacher.options.get("out_channels", 3))
    disc, notes["discriminator"] = (
        build_discriminator(recipe.discriminator, in_ch, out_ch) if recipe.loss.gan > 0 else (None, "none")
    )
    if recipe.discriminator.conditional:
        raise ConfigError(
            "discriminator.conditional: GAN Slimming's D sees output images only (teacher real, student fake)"
        )

    # 1. slim while distilling (and quantising)
    t = time.perf_counter()
    student = slimmable_student(frozen_teacher)
    groups = scale_groups(student, recipe.slim.groups)
    if not groups:
        raise ConfigError(
            f"no width group of this {teacher.family} generator is gated by a norm with a scale γ"
        )
    quant = (
        QuantizedGenerator.attach(student, bits, recipe.quant.act_max, probe=frozen_teacher)
        if bits < 32
        else None
    )
    macs_table = MacsTable(student, size, out_dir / "macs_cache.json")
    if target is not None:
        # An unreachable target fails now, not after the slimming stage (threshold_to_budget checks again).
        floor = widths_at(student, groups, math.inf)
        if macs_table(floor) > target[2]:
            raise BudgetError(
                f"MACs target {target[2]:.4g} is below what one unit of width per gated group costs "
                f"({floor}: {macs_table(floor):.4g} MACs, the smallest reachable); raise the target or "
                "gate more groups (slim.groups)"
            )
    task = _make_task(
        student,
        frozen_teacher,
        disc,
        recipe,
        recipe.slim.train,
        distillation,
        groups,
        rho,
        target_macs=None if target is None else target[2],
        macs=None if target is None else macs_table,
    )
    stages: dict[str, Any] = {}
    stages["slim"] = run_stage(task, train, recipe.slim.train, out_dir / "slim", options, bs, nw)
    if quant is not None:
        quant.remove(bake=False)  # channel removal works on the latent weights; fine-tuning re-attaches
    sparsity = {
        "rho": rho,
        "alive_channels": alive_channels(student, groups),
        "channels": {g.name: g.channels for g in groups.values()},
        "arch_from_rho": str(widths_at(student, groups)),
        "stopped_at_target": bool(task.prox_stopped.item()),
    }
    wall["slim"] = time.perf_counter() - t

    # 2. reach the MACs target with a final threshold on |γ|
    control: dict[str, Any] = {"given": None}
    if target is not None:
        kind_given, value, target_macs = target
        control = {"given": kind_given, "value": value, "macs": target_macs}
        control.update(threshold_to_budget(student, groups, macs_table, target_macs))

    # 3. remove the γ = 0 channels (exactly)
    t = time.perf_counter()
    slim = remove_off_channels(student, groups)
    wall["extract"] = time.perf_counter() - t
    arch_removed = str(slim.arch)

    # 4. fine-tune the plain generator with the same objective, then export
    t = time.perf_counter()
    ft_quant = (
        QuantizedGenerator.attach(slim, bits, recipe.quant.act_max, probe=frozen_teacher)
        if bits < 32
        else None
    )
    if recipe.finetune.enabled:
        ft = _make_task(slim, frozen_teacher, disc, recipe, recipe.finetune, distillation)
        stages["finetune"] = run_stage(ft, train, recipe.finetune, out_dir / "finetune", options, bs, nw)
    held = held_out_inputs(evaluation, held_idx)
    quality: dict[str, Any] = {}
    slim.eval()
    if ft_quant is not None:
        quality["fake_quant"] = quality_vs_teacher(slim, frozen_teacher, held)
        ft_quant.remove(bake=True)  # the saved weights lie on the int8 grid GS-8 trained for
        notes["weights"] = f"weights baked on their learned {bits}-bit per-layer symmetric grid"
    wall["finetune"] = time.perf_counter() - t

    student_prof = profile_generator(slim, size)
    export_dir = save_generator(
        slim,
        out_dir / "student",
        extra={
            "method": "gan-slimming",
            "bits": bits,
            "teacher_macs": teacher_prof.macs_paper,
            "arch": str(slim.arch),
        },
    )
    quality["fp32"] = quality_vs_teacher(slim, frozen_teacher, held)
    t = time.perf_counter()
    artifacts, int8_sess = export_int8(
        slim, out_dir, data, recipe.data.crop_size, recipe.quant.calibration_images
    )
    quality["onnx_int8"] = quality_vs_teacher(lambda x: run_session(int8_sess, x), frozen_teacher, held)
    notes["int8"] = (
        "static QDQ int8 (ONNX Runtime quantize_static: per-channel symmetric int8 weights, uint8 activations "
        f"calibrated by min/max on {recipe.quant.calibration_images} training inputs), run in ONNX Runtime; "
        + (
            "the QAT-trained weights are on a per-layer int8 grid, the activation scales are re-calibrated, not "
            "exported from training"
            if bits < 32
            else "post-training quantisation of the GS-32 student"
        )
    )
    wall["export"] = time.perf_counter() - t
    files = {
        "safetensors": (export_dir / "model.safetensors").stat().st_size,
        "onnx_fp32": Path(artifacts["onnx_fp32"]).stat().st_size,
        "onnx_int8": Path(artifacts["onnx_int8"]).stat().st_size,
    }
    wall["total"] = time.perf_counter() - t0
    teacher_bits = teacher_prof.params * 32
    summary = {
        "method": "gan-slimming",
        "variant": f"GS-{bits}",
        "task": recipe.task,
        "data_kind": kind,
        "image_size": list(size),
        "bits": bits,
        "teacher": {"arch": str(teacher.arch), **_prof(teacher_prof)},
        "student": {"arch": str(slim.arch), **_prof(student_prof)},
        "arch_after_removal": arch_removed,
        "macs_ratio": teacher_prof.macs_paper / max(student_prof.macs_paper, 1),
        # the paper's compression ratios: r_c on MACs, r_s on model size in bits (32-bit teacher)
        "r_c": teacher_prof.macs_paper / max(student_prof.macs_paper, 1),
        "r_s": teacher_bits / max(student_prof.params * bits, 1),
        "target": control,
        "reached_macs": student_prof.macs_paper,
        "sparsity": sparsity,
        "quantisation": {
            "bits": bits,
            "act_max": recipe.quant.act_max,
            "inputs": quant.inputs if quant else {},
        },
        "held_out_vs_teacher": quality,
        "bytes_on_disk": files,
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "fit"} for k, v in stages.items()},
        "wall_time_s": wall,
        "notes": notes,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if target is not None and student_prof.macs_paper > target[2]:
        raise ConfigError(
            f"slimmed generator costs {student_prof.macs_paper} MACs, above the target {target[2]}"
        )
    atomic_write_json(out_dir / "gan_slimming_summary.json", summary)
    return CompressionResult(
        method="gan-slimming",
        generator=slim,
        summary=summary,
        artifacts={
            "student": str(export_dir),
            "summary": str(out_dir / "gan_slimming_summary.json"),
            **artifacts,
        },
    )
