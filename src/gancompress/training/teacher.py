"""Train a teacher from a recipe: data, Task, :func:`fit`, then the saved generator, its D and held-out scores.

The run directory holds ``config.yaml`` (the resolved recipe), ``checkpoints/``, ``logs/``
(``train.csv`` and TensorBoard), ``samples/`` (grids of fixed test inputs), ``generator/`` (the saved
generator, with ``discriminator.safetensors`` and ``discriminator.json`` beside its weights) and
``eval.json`` (PSNR / SSIM / L1 on the test split, when it has ground truth).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from ..config import save_yaml, to_dict
from ..errors import ConfigError, DataError
from ..utils.files import atomic_write_bytes, atomic_write_json
from .loop import fit
from .recipe import DataConfig, TrainRecipe
from .tasks import TeacherTask, build_task, discriminator_config, discriminator_in_channels, split_batch


def resolve_data_root(recipe: TrainRecipe) -> Path:
    """``recipe.data.root`` as a folder, through the one ``builtin:`` parser every verb uses
    (:func:`gancompress.data.builtin.resolve_data_spec`): unpaired tasks (CycleGAN, MUNIT) read the
    unpaired layout, and ``data.builtin_size`` is the size of a spec without ``@SIZE``."""
    from ..data.builtin import resolve_data_spec

    layout = None if recipe.task in ("pix2pix", "gaugan") else "unpaired"
    return resolve_data_spec(
        recipe.data.root, layout=layout, size=recipe.data.builtin_size, option="data.root"
    )


def eval_transform(cfg: DataConfig):
    """The deterministic transform of the test split: the training geometry without crop or flip."""
    from ..data import TransformConfig

    if cfg.preprocess.startswith("scale_width"):
        return TransformConfig(
            load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess="scale_width", flip=False
        )
    return TransformConfig.for_eval(cfg.crop_size)


def build_datasets(recipe: TrainRecipe, root: Path) -> tuple[Dataset, Dataset | None, str]:
    """(training set with random crop/flip, the test split with the evaluation transform or None, kind)."""
    from ..data import TransformConfig, build_dataset, detect_kind

    cfg = recipe.data
    kind = detect_kind(root, "train") if cfg.kind == "auto" else cfg.kind
    if recipe.task == "gaugan" and kind != "semantic":
        raise DataError(f"{root}: GauGAN trains on semantic data (train_label/ + train_img/), found {kind}")
    options: dict[str, Any] = {}
    if kind == "semantic" and cfg.num_classes is not None:
        options["num_classes"] = cfg.num_classes
    tf = TransformConfig(
        load_size=cfg.load_size, crop_size=cfg.crop_size, preprocess=cfg.preprocess, flip=cfg.flip
    )
    train = build_dataset(root, kind, "train", tf, direction=cfg.direction, **options)
    test = None
    try:
        eval_options = dict(options, serial=True) if kind == "unpaired" else options
        test = build_dataset(
            root,
            kind,
            cfg.test_split,
            eval_transform(cfg),
            direction=cfg.direction,
            **eval_options,
        )
        if len(test) == 0:  # type: ignore[arg-type]
            test = None
    except DataError:
        test = None  # no test split: samples come from the training set, and there is no held-out score
    return train, test, kind


def check_input_size(recipe: TrainRecipe, task: TeacherTask, size: tuple[int, int], d_in: int) -> None:
    """Images too small for the networks' downsampling fail now, naming the field, not in the first step."""
    from .tasks import build_discriminator

    g = task.generator()
    try:
        with torch.device("meta"), torch.no_grad():  # shapes only: nothing is allocated or computed
            probe = type(g).from_options(g.arch, dict(g.options)).eval()
            probe(probe.example_input(size))
            build_discriminator(recipe, d_in).eval()(torch.zeros(1, d_in, *size))
    except (RuntimeError, TypeError, ValueError) as exc:  # torch's shape checks raise all three
        raise ConfigError(
            f"data.crop_size: the networks cannot run on {size[0]}x{size[1]} images ({exc}); "
            "raise data.crop_size (and data.load_size)"
        ) from None


def first_items(dataset: Dataset, count: int) -> Any:
    return default_collate([dataset[i] for i in range(min(count, len(dataset)))])  # type: ignore[arg-type]


def _paired_test(test: Dataset | None, kind: str) -> bool:
    if test is None:
        return False
    if kind != "unpaired":
        return True
    # Unpaired test folders are scored only when they hold the same file names (the fonts layout).
    a = [Path(p).name for p in getattr(test, "paths_a", [])]
    b = [Path(p).name for p in getattr(test, "paths_b", [])]
    return bool(a) and a == b


@torch.no_grad()
def evaluate_paired(task: TeacherTask, test: Dataset, batch_size: int = 16) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and L1 of the saved generator's outputs against the test split's ground truth."""
    from ..metrics.paired import l1, psnr, ssim

    scores: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": [], "l1": []}
    # The input itself scored as the output: how far the task is from copying (a reference, not a goal).
    copy: dict[str, list[torch.Tensor]] = {"psnr": [], "l1": []}
    device = next(task.parameters()).device
    n = len(test)  # type: ignore[arg-type]
    for start in range(0, n, batch_size):
        batch = default_collate([test[i] for i in range(start, min(n, start + batch_size))])
        real_in, real_out = (t.to(device) for t in split_batch(batch))
        fake = task.translate(real_in, real_out)
        scores["psnr"].append(psnr(fake, real_out).cpu())
        scores["ssim"].append(ssim(fake, real_out).cpu())
        scores["l1"].append(l1(fake, real_out).cpu())
        if real_in.shape == real_out.shape:
            copy["psnr"].append(psnr(real_in, real_out).cpu())
            copy["l1"].append(l1(real_in, real_out).cpu())
    out = {k: float(torch.cat(v).mean()) for k, v in scores.items()} | {"images": n}
    if copy["psnr"]:
        out["input_as_output"] = {k: float(torch.cat(v).mean()) for k, v in copy.items()}
    return out


def save_teacher(task: TeacherTask, out: Path, recipe: TrainRecipe, d_in: int, meta: dict[str, Any]) -> Path:
    """``out/generator``: the saved generator, plus its discriminator's weights and config beside them."""
    from safetensors.torch import save as st_save

    from ..export.saved import save_generator
    from .checkpoint import model_state

    path = save_generator(task.generator(), out / "generator", extra=meta)
    atomic_write_bytes(path / "discriminator.safetensors", st_save(model_state(task.discriminator())))
    atomic_write_json(path / "discriminator.json", discriminator_config(recipe, d_in))
    return path


def train_teacher(
    recipe: TrainRecipe,
    out_dir: str | Path,
    *,
    resume: bool = True,
    device: str = "cpu",
    progress: bool = True,
    resume_anyway: bool = False,
) -> dict[str, Any]:
    """Train the teacher ``recipe`` describes into ``out_dir`` (resumable); returns the run's summary.

    Example:
        >>> summary = train_teacher(load_train_recipe("configs/train/pix2pix_fonts.yaml"), "runs/teacher")
        >>> summary["eval"]["psnr"]
    """
    threads = torch.get_num_threads()
    # -- run directory: lock and recipe fingerprint, before config.yaml is rewritten (utils/rundir.py) --
    from ..utils.rundir import RunDir

    run_dir = RunDir(out_dir, {"recipe": to_dict(recipe)}, resume=resume, resume_anyway=resume_anyway)
    # -- end run directory --
    try:
        with run_dir:
            return _train_teacher(recipe, Path(out_dir), resume=resume, device=device, progress=progress)
    finally:
        torch.set_num_threads(threads)  # train.threads holds for this run, not for the caller's process


def _train_teacher(
    recipe: TrainRecipe, out: Path, *, resume: bool, device: str, progress: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    root = resolve_data_root(recipe)
    train, test, kind = build_datasets(recipe, root)
    probe = train[0]
    real_in, real_out = split_batch(probe)
    in_ch, out_ch = int(real_in.shape[0]), int(real_out.shape[0])
    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed alone
    task = build_task(recipe, in_ch, out_ch)
    d_in = int(discriminator_in_channels(recipe, in_ch, out_ch))
    check_input_size(recipe, task, tuple(real_in.shape[-2:]), d_in)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    max_steps, decay_from = cfg.schedule(len(train), world)
    if max_steps <= 0:
        raise ConfigError("train: the schedule has no steps (epochs, decay_epochs and max_steps are all 0)")
    if rank == 0:
        from ..utils.files import check_writable

        check_writable(out)  # a read-only or unusable output folder fails now, not at the first checkpoint
        save_yaml(
            to_dict(recipe)
            | {
                "resolved": {
                    "data_root": str(root),
                    "kind": kind,
                    "max_steps": max_steps,
                    "decay_from": decay_from,
                    "world_size": world,
                }
            },
            out / "config.yaml",
        )
    samples = first_items(test if test is not None else train, cfg.num_samples) if cfg.num_samples else None
    result = fit(
        task,
        train,
        out,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        max_steps=max_steps,
        decay_from=decay_from,
        checkpoint_every=cfg.checkpoint_every,
        log_every=cfg.log_every,
        sample_every=cfg.sample_every,
        resume=resume,
        seed=cfg.seed,
        device=device,
        sample_batch=samples,
        keep_last=cfg.keep_last,
        on_nonfinite=cfg.on_nonfinite,
        progress=progress,
        precision=cfg.precision,
        compile=cfg.compile,
        channels_last=cfg.channels_last,
        stage=f"train {recipe.task}",
    )
    summary: dict[str, Any] = {
        "task": recipe.task,
        "data_root": str(root),
        "kind": kind,
        "train_images": len(train),  # type: ignore[arg-type]
        "steps": result["step"],
        "decay_from": decay_from,
        "fit": {k: v for k, v in result.items() if k != "logs"},
        "final_logs": result["logs"],
        "device": str(device),
        "precision": cfg.precision,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if rank != 0:
        return summary
    d_in = discriminator_in_channels(recipe, in_ch, out_ch)
    summary["generator"] = str(
        save_teacher(
            task,
            out,
            recipe,
            int(d_in),
            {"task": recipe.task, "recipe": to_dict(recipe), "steps": result["step"]},
        )
    )
    if _paired_test(test, kind):
        summary["eval"] = evaluate_paired(task, test) | {"split": recipe.data.test_split}
        atomic_write_json(out / "eval.json", summary["eval"])
    summary["wall_s"] = time.perf_counter() - t0
    summary["invocations"] = _previous_invocations(out / "summary.json", result["start_step"]) + [
        {"start_step": result["start_step"], "step": result["step"], "wall_s": summary["wall_s"]}
    ]
    atomic_write_json(out / "summary.json", summary)
    return summary


def _previous_invocations(path: Path, start_step: int) -> list[dict[str, Any]]:
    """Earlier runs of this directory up to ``start_step``: a resumed run keeps the record of the first."""
    import json

    try:
        old = json.loads(path.read_text())
        runs = old.get("invocations", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [r for r in runs if isinstance(r, dict) and r.get("step", 0) <= start_step]
