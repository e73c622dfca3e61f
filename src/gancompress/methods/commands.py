"""``gancompress compress``: run a registered compression method on a teacher and a dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError
from ..utils.options import (
    MAX_SEED,
    data_spec,
    device_option,
    duration,
    existing_path,
    fraction,
    json_option,
    non_negative_float,
    positive_float,
    precision_option,
    seed,
    threads_option,
)

# options only some methods read; any other method refuses them by name instead of ignoring them
METHOD_ONLY_OPTIONS = {
    "rho": ("gan-slimming",),
    "bits": ("gan-slimming",),
    "budget_latency_ms": ("gan-compression", "fast-gan-compression"),
}


def method_name(text: str) -> str:
    """An argparse type: a registered compression method."""
    from . import list_methods

    known = list_methods()
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown method {text!r}; known: {', '.join(known)}")
    return text


method_name.__name__ = "method"


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="compress a teacher generator with a registered method")
    p.add_argument(
        "--method",
        required=True,
        type=method_name,
        help="gan-compression | fast-gan-compression | gan-slimming | coronet | …",
    )
    p.add_argument(
        "--teacher",
        type=existing_path("any"),
        help="saved generator directory, or an official latest_net_G.pth (every method but coronet needs "
        "one; coronet without it trains from scratch: the starting generator is the recipe's generator "
        "block, with --family/--norm/--num-blocks/--num-downs/--dropout/--padding over it)",
    )
    p.add_argument("--data", required=True, type=data_spec, help="dataset root, or builtin:fonts")
    p.add_argument("--out", required=True, help="run directory (resumable)")
    p.add_argument(
        "--recipe", type=existing_path("file"), help="YAML recipe (default: the method's built-in recipe)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set search.population=50 (repeatable)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget-macs", type=positive_float, help="MACs budget in the paper convention, e.g. 3e9"
    )
    budget.add_argument(
        "--budget-latency-ms",
        type=positive_float,
        help="latency budget measured on this machine (gan-compression, fast-gan-compression)",
    )
    budget.add_argument(
        "--ratio", type=fraction, help="target MACs as a fraction of the teacher's, in (0, 1)"
    )
    p.add_argument(
        "--rho", type=non_negative_float, help="gan-slimming: sparsity weight on the normalisation scales"
    )
    p.add_argument(
        "--bits", type=int, choices=(8, 32), help="gan-slimming: quantisation bit width (32 = none, 8 = int8)"
    )
    p.add_argument(
        "--time-budget",
        type=duration,
        metavar="DURATION",
        help="plan the stages to finish within this wall time: 90s, 60m, 1h, 1h30m or seconds",
    )
    precision_option(p)
    p.add_argument("--quick", action="store_true", help="a shortened schedule (smoke runs, the quick demo)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over instead of resuming")
    p.add_argument(  # run directory (utils/rundir.py)
        "--resume-anyway",
        action="store_true",
        help="resume even though the recipe or teacher differs from the ones the run started with",
    )
    device_option(p)
    threads_option(p)
    p.add_argument("--seed", type=seed, default=0, help=f"random seed in [0, {MAX_SEED}] (default 0)")
    json_option(p)
    from ..export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_compress)


def check_method_options(args: argparse.Namespace) -> None:
    """Refuse, by name, an option that the chosen method would silently ignore."""
    for dest, users in METHOD_ONLY_OPTIONS.items():
        if getattr(args, dest, None) is not None and args.method not in users:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} is read by {', '.join(users)} only; {args.method} does not use it")


def load_teacher(path: str | Path, args: argparse.Namespace | None = None, *, train: bool = False):
    """A saved generator directory, or an official pix2pix/CycleGAN ``.pth`` or a close variant (read
    weights-only); ``args`` carries the checkpoint overrides (``--norm``, …). See ``export.resolve``."""
    from ..export.resolve import load_generator_arg

    return load_generator_arg(path, args, train=train)


def resolve_data(spec: str) -> Path:
    """A dataset path, or a ``builtin:`` spec (built on first use); see :func:`resolve_data_spec`."""
    from ..data.builtin import resolve_data_spec

    return resolve_data_spec(spec)


# Without --teacher, the checkpoint options describe the generator to start from instead.
START_OPTIONS = {
    "ckpt_norm": "norm",
    "ckpt_num_blocks": "num_blocks",
    "ckpt_num_downs": "num_downs",
    "ckpt_dropout": "dropout",
    "ckpt_padding": "padding",
}


def start_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides of the starting generator block from ``--family``, ``--norm``, … (no teacher)."""
    if getattr(args, "ckpt_entry", None) is not None:
        raise ConfigError("--entry picks a state dict inside a --teacher checkpoint; there is no --teacher")
    out = [f"generator.name={args.ckpt_family}"] if getattr(args, "ckpt_family", None) else []
    for dest, option in START_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(f"generator.options.{option}={value}")
    return out


def cmd_compress(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..export.saved import save_generator
    from ..metrics.profile import profile_generator
    from ..utils.files import atomic_write_json
    from . import MethodOptions, compress

    check_method_options(args)
    overrides = list(args.overrides)
    teacher = None
    if args.teacher is None:  # from scratch: only a teacher-free method (coronet) takes that
        from .common.method import method_classes

        if not getattr(method_classes().get(args.method), "teacher_free", False):
            raise ConfigError(
                f"--teacher is required for {args.method} (a saved generator directory or an official "
                "latest_net_G.pth); only coronet trains from scratch without one"
            )
        overrides[:0] = start_overrides(args)  # a --set generator.... still wins
    else:
        teacher = load_teacher(args.teacher, args, train=True)
    data = resolve_data(args.data)
    out = Path(args.out)
    saved_d = Path(args.teacher) / "discriminator.safetensors" if args.teacher is not None else None
    if (
        saved_d is not None
        and args.method in ("gan-compression", "fast-gan-compression")
        and saved_d.is_file()
        and not any(o.startswith("discriminator.init_from=") for o in overrides)
    ):
        # The paper starts the student's discriminator from the teacher's; `gancompress train` saves it.
        overrides.append(f"discriminator.init_from={saved_d}")
    options = MethodOptions(
        recipe=args.recipe,
        overrides=tuple(overrides),
        budget_macs=args.budget_macs,
        budget_latency_ms=args.budget_latency_ms,
        ratio=args.ratio,
        rho=args.rho,
        bits=args.bits,
        resume=args.resume,
        resume_anyway=args.resume_anyway,  # run directory (utils/rundir.py)
        teacher_path=str(args.teacher) if args.teacher is not None else None,
        device=args.device,
        seed=args.seed,
        quick=args.quick,
        time_budget_s=args.time_budget,
        precision=args.precision,
    )
    start = time.perf_counter()
    result = compress(args.method, teacher, data, out, options)
    wall = time.perf_counter() - start
    # Profile at the size the method compressed for (its summary says so), else the family default.
    size = result.summary.get("image_size")
    if size is not None:
        size = tuple(size)
    elif teacher is not None and teacher.family == "spade":
        size = tuple(teacher.default_size)
    s_prof = profile_generator(result.generator, size)
    if teacher is not None:
        t_prof = profile_generator(teacher, size)
        reference = {
            "arch": str(teacher.arch),
            "params": t_prof.params,
            "macs_paper": t_prof.macs_paper,
            "macs_true": t_prof.macs_true,
        }
    else:  # from scratch: the reduction is relative to the full-width starting generator
        reference = dict(result.summary["details"]["start"])
    summary = {
        "method": result.method,
        "teacher": reference if teacher is not None else None,
        **({} if teacher is not None else {"start": reference}),
        "student": {
            "arch": str(result.generator.arch),
            "params": s_prof.params,
            "macs_paper": s_prof.macs_paper,
            "macs_true": s_prof.macs_true,
        },
        "macs_reduction": reference["macs_paper"] / max(s_prof.macs_paper, 1),
        "input_shape": s_prof.input_shape,
        "wall_time_s": wall,
        "method_summary": result.summary,
        "artifacts": result.artifacts,
    }
    from ..training.distributed import is_main

    if not is_main():
        return 0  # under torchrun rank 0 writes and prints what the run made
    save_generator(
        result.generator,
        out / "generator",
        extra={
            "method": result.method,
            ("teacher_arch" if teacher is not None else "start_arch"): reference["arch"],
            ("teacher_macs_paper" if teacher is not None else "start_macs_paper"): reference["macs_paper"],
        },
    )
    atomic_write_json(out / "summary.json", summary)
    if args.json:
        keys = ("method", "teacher", "start", "student", "macs_reduction", "wall_time_s")
        print_json({k: summary[k] for k in keys if k in summary})
        return 0
    print(summary_text(summary))
    print(f"saved the compressed generator to {out / 'generator'}")
    return 0


def summary_text(summary: dict) -> str:
    """A few human-readable lines: teacher and student side by side, then the stages' wall times."""
    scratch = summary.get("teacher") is None  # trained from scratch: compared with the starting generator
    t, st = summary["start"] if scratch else summary["teacher"], summary["student"]
    h, w = summary["input_shape"][-2:]
    lines = [
        f"{summary['method']} at {h}x{w}: MACs (paper convention) {t['macs_paper'] / 1e9:.3f}G -> "
        f"{st['macs_paper'] / 1e9:.3f}G ({summary['macs_reduction']:.1f}x fewer), "
        f"params {t['params'] / 1e6:.3f}M -> {st['params'] / 1e6:.3f}M",
        f"  {'start (no teacher, trained from scratch)' if scratch else 'teacher'} {t['arch']}  ->  "
        f"student {st['arch']}",
    ]
    search = summary.get("method_summary", {}).get("details", {}).get("search")
    if isinstance(search, dict) and "score" in search:
        lines.append(
            f"  search: {search.get('strategy')} over {search.get('candidates')} candidates "
            f"({search.get('evaluations')} scored in this run), {search.get('metric')} {search['score']:.4g}"
        )
    stages = summary.get("method_summary", {}).get("wall_time_s")
    if isinstance(stages, dict):
        parts = ", ".join(f"{k} {v:.0f}s" for k, v in stages.items() if k != "total")
        lines.append(f"  wall time: {parts}; total {summary['wall_time_s']:.0f}s")
    return "\n".join(lines)
