"""``gancompress compress``: run a registered compression method on a teacher and a dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="compress a teacher generator with a registered method")
    p.add_argument(
        "--method", required=True, help="gan-compression | fast-gan-compression | gan-slimming | coronet | …"
    )
    p.add_argument(
        "--teacher", required=True, help="saved generator directory, or an official latest_net_G.pth"
    )
    p.add_argument("--data", required=True, help="dataset root, or builtin:fonts")
    p.add_argument("--out", required=True, help="run directory (resumable)")
    p.add_argument("--recipe", help="YAML recipe (default: the method's built-in recipe)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set search.population=50 (repeatable)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-macs", type=float, help="MACs budget in the paper convention, e.g. 3e9")
    budget.add_argument("--budget-latency-ms", type=float, help="latency budget measured on this machine")
    budget.add_argument("--ratio", type=float, help="target MACs as a fraction of the teacher's, e.g. 0.1")
    p.add_argument("--rho", type=float, help="GAN Slimming: sparsity weight on the normalisation scales")
    p.add_argument("--bits", type=int, help="quantisation bit width (32 = none, 8 = int8)")
    p.add_argument("--quick", action="store_true", help="a shortened schedule (smoke runs, the quick demo)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over instead of resuming")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    from ..export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_compress)


def load_teacher(path: str | Path, args: argparse.Namespace | None = None, *, train: bool = False):
    """A saved generator directory, or an official pix2pix/CycleGAN ``.pth`` or a close variant (read
    weights-only); ``args`` carries the checkpoint overrides (``--norm``, …). See ``export.resolve``."""
    from ..export.resolve import load_generator_arg

    return load_generator_arg(path, args, train=train)


def resolve_data(spec: str) -> Path:
    """A dataset path, or ``builtin:NAME`` for a built-in dataset (built on first use)."""
    if spec.startswith("builtin:"):
        from ..data import ensure_builtin_dataset

        return Path(ensure_builtin_dataset(spec.split(":", 1)[1]))
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError(f"--data {spec}: no such directory")
    return path


def cmd_compress(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..export.saved import save_generator
    from ..metrics.profile import profile_generator
    from ..utils.files import atomic_write_json
    from . import MethodOptions, compress

    if args.bits is not None and args.bits not in (8, 32):
        raise ConfigError(f"--bits must be 8 or 32, got {args.bits}")
    teacher = load_teacher(args.teacher, args, train=True)
    data = resolve_data(args.data)
    out = Path(args.out)
    overrides = list(args.overrides)
    saved_d = Path(args.teacher) / "discriminator.safetensors"
    if (
        args.method in ("gan-compression", "fast-gan-compression")
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
        device=args.device,
        seed=args.seed,
        quick=args.quick,
    )
    start = time.perf_counter()
    result = compress(args.method, teacher, data, out, options)
    wall = time.perf_counter() - start
    # Profile at the size the method compressed for (its summary says so), else the family default.
    size = result.summary.get("image_size")
    if size is not None:
        size = tuple(size)
    elif teacher.family == "spade":
        size = tuple(teacher.default_size)
    t_prof = profile_generator(teacher, size)
    s_prof = profile_generator(result.generator, size)
    summary = {
        "method": result.method,
        "teacher": {
            "arch": str(teacher.arch),
            "params": t_prof.params,
            "macs_paper": t_prof.macs_paper,
            "macs_true": t_prof.macs_true,
        },
        "student": {
            "arch": str(result.generator.arch),
            "params": s_prof.params,
            "macs_paper": s_prof.macs_paper,
            "macs_true": s_prof.macs_true,
        },
        "macs_reduction": t_prof.macs_paper / max(s_prof.macs_paper, 1),
        "input_shape": s_prof.input_shape,
        "wall_time_s": wall,
        "method_summary": result.summary,
        "artifacts": result.artifacts,
    }
    save_generator(
        result.generator,
        out / "generator",
        extra={
            "method": result.method,
            "teacher_arch": str(teacher.arch),
            "teacher_macs_paper": t_prof.macs_paper,
        },
    )
    atomic_write_json(out / "summary.json", summary)
    print_json({k: summary[k] for k in ("method", "teacher", "student", "macs_reduction", "wall_time_s")})
    print(summary_text(summary))
    print(f"saved the compressed generator to {out / 'generator'}")
    return 0


def summary_text(summary: dict) -> str:
    """A few human-readable lines: teacher and student side by side, then the stages' wall times."""
    t, st = summary["teacher"], summary["student"]
    h, w = summary["input_shape"][-2:]
    lines = [
        f"{summary['method']} at {h}x{w}: MACs (paper convention) {t['macs_paper'] / 1e9:.3f}G -> "
        f"{st['macs_paper'] / 1e9:.3f}G ({summary['macs_reduction']:.1f}x fewer), "
        f"params {t['params'] / 1e6:.3f}M -> {st['params'] / 1e6:.3f}M",
        f"  teacher {t['arch']}  ->  student {st['arch']}",
    ]
    search = summary.get("method_summary", {}).get("search")
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
