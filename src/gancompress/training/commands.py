"""``gancompress train``: train a teacher (pix2pix, CycleGAN, GauGAN, MUNIT) from a YAML recipe."""

from __future__ import annotations

import argparse

from ..utils.options import data_spec, device_option, existing_path, json_option, positive_int, threads_option


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a teacher generator (resumable; scales out under torchrun)",
        description="Train a teacher. Under `torchrun --nproc_per_node N -m gancompress.cli train ...` "
        "the same command trains data-parallel (NCCL on GPUs, gloo on CPU).",
    )
    p.add_argument("--task", required=True, choices=["pix2pix", "cyclegan", "gaugan", "munit"])
    p.add_argument(
        "--data", type=data_spec, help="dataset folder or builtin:fonts (default: the recipe's data.root)"
    )
    p.add_argument("--out", required=True, help="run directory (resumable)")
    p.add_argument(
        "--recipe", type=existing_path("file"), help="YAML recipe (default: configs/train/<task>_fonts.yaml)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set train.batch_size=4 (repeatable)",
    )
    p.add_argument(
        "--steps", type=positive_int(), help="train for this many steps (same as --set train.max_steps=N)"
    )
    p.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=True,
        help="continue from the newest checkpoint (default)",
    )
    p.add_argument(
        "--no-resume", dest="resume", action="store_false", help="start over, deleting old checkpoints"
    )
    p.add_argument(  # run directory (utils/rundir.py)
        "--resume-anyway",
        action="store_true",
        help="resume even though the recipe differs from the one the run started with",
    )
    device_option(p)
    threads_option(p)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="training precision: bf16 autocast (CPU or CUDA), fp16 with loss scaling (CUDA); "
        "same as --set train.precision=P (default: the recipe's, fp32)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the generator and discriminator (same as --set train.compile=true)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    json_option(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..errors import ConfigError
    from .recipe import default_recipe_path, load_train_recipe
    from .teacher import train_teacher

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    if args.steps is not None:
        overrides.append(f"train.max_steps={args.steps}")
    if args.threads is not None:  # an explicit --threads wins over the recipe's train.threads
        overrides.append(f"train.threads={args.threads}")
    if args.precision is not None:
        overrides.append(f"train.precision={args.precision}")
    if args.compile:
        overrides.append("train.compile=true")
    path = args.recipe or default_recipe_path(args.task)
    recipe = load_train_recipe(path, overrides)
    if recipe.task != args.task:
        raise ConfigError(f"{path}: the recipe trains {recipe.task!r}, but --task is {args.task!r}")
    summary = train_teacher(
        recipe,
        args.out,
        resume=args.resume,
        device=args.device,
        progress=args.progress,
        resume_anyway=args.resume_anyway,
    )
    if not summary.get("generator"):  # not the main process of a torchrun job
        return 0
    if args.json:
        print_json({k: summary[k] for k in ("generator", "steps", "eval", "wall_s") if k in summary})
        return 0
    print(train_summary_text(summary))
    return 0


def train_summary_text(summary: dict) -> str:
    """A few readable lines at the end of ``train``: what was trained, how long, how well, where."""
    fit = summary.get("fit", {})
    start = fit.get("start_step", 0)
    resumed = f", resumed from step {start}" if start else ""
    lines = [
        f"trained {summary.get('task')} for {summary.get('steps')} steps{resumed} on "
        f"{summary.get('train_images')} {summary.get('kind')} images ({summary.get('data_root')})",
        f"  device {summary.get('device')}, {summary.get('threads')} CPU threads, "
        f"{summary.get('wall_s', 0.0):.0f} s this run",
    ]
    scores = summary.get("eval")
    if isinstance(scores, dict):
        parts = [
            f"{k.upper()} {scores[k]:.4g}" for k in ("psnr", "ssim", "l1") if isinstance(scores.get(k), float)
        ]
        if parts:
            lines.append(
                f"  held-out {scores.get('split', 'test')} ({scores.get('images')} images): {', '.join(parts)}"
            )
    losses = summary.get("final_logs")
    if isinstance(losses, dict):
        parts = [f"{k} {v:.4g}" for k, v in losses.items() if isinstance(v, float)][:6]
        if parts:
            lines.append(f"  last losses: {', '.join(parts)}")
    lines.append(f"saved the generator to {summary['generator']} (--json for all of this as JSON)")
    return "\n".join(lines)
