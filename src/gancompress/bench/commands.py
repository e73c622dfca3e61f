"""``gancompress benchmark`` and ``gancompress demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .latency import DEFAULT_THREADS, RUNTIMES


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="measure a teacher and compressed generators side by side; write results and a report",
    )
    p.add_argument("--teacher", required=True, help="saved generator directory (or an official .pth)")
    p.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a compressed generator to compare (repeatable)",
    )
    p.add_argument("--data", required=True, help="dataset root, or builtin:fonts")
    p.add_argument("--out", required=True, help="output folder: results.json, results.md, plots, report.html")
    p.add_argument(
        "--runtimes", nargs="+", choices=RUNTIMES, default=None, help="default: eager ort-fp32 ort-int8"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"threads per latency measurement (default {DEFAULT_THREADS}: more mostly measure other jobs)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="where latency is measured: cpu (default), cuda, cuda:N or auto (CUDA events; "
        "eager-fp16, eager-bf16, cuda-graph and ort-cuda rows)",
    )
    p.add_argument("--size", type=int, help="latency input side (default: the dataset's image size)")
    p.add_argument("--repeats", type=int, help="timed calls per runtime (default 20, quick 5)")
    p.add_argument("--warmup", type=int, help="untimed calls first (default 3, quick 1)")
    p.add_argument(
        "--extractors",
        nargs="*",
        default=["domain"],
        help="FID/KID feature extractors (none: only PSNR/SSIM/L1)",
    )
    p.add_argument("--max-images", type=int, help="evaluate on at most this many test images")
    p.add_argument("--no-int8", dest="int8", action="store_false", help="no int8 row per model")
    p.add_argument("--quick", action="store_true", help="few repeats, 32 test images")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "demo", help="train a teacher on the built-in data, compress it with every method, benchmark, report"
    )
    p.add_argument("--out", default="runs/demo", help="run directory (resumable; default runs/demo)")
    p.add_argument("--quick", action="store_true", help="the quick profile (about 5 minutes on a small CPU)")
    p.add_argument("--recipe", help="a demo profile YAML (default: configs/demo/quick.yaml or full.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile field, e.g. --set benchmark.threads=1 (repeatable)",
    )
    p.set_defaults(func=cmd_demo)


def parse_students(specs: list[str]) -> dict[str, str]:
    """``["fgc=runs/fgc/generator", ...]`` → ``{"fgc": "runs/fgc/generator"}``, names unique."""
    students: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--student {spec!r}: expected NAME=DIR")
        if name in students:
            raise ConfigError(f"--student: the name {name!r} is given twice")
        if not Path(path).exists():
            raise ConfigError(f"--student {name}={path}: no such file or directory")
        students[name] = path
    return students


def _latency_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto")
    return device


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..methods.commands import resolve_data
    from .benchmark import BenchmarkOptions, run_benchmark

    students = parse_students(args.student)
    if not Path(args.teacher).exists():
        raise ConfigError(f"--teacher {args.teacher}: no such file or directory")
    options = BenchmarkOptions(
        runtimes=tuple(args.runtimes or ("eager", "ort-fp32", "ort-int8")),
        threads=args.threads,
        size=args.size,
        device=_latency_device(args.device),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 3),
        repeats=args.repeats if args.repeats is not None else (5 if args.quick else 20),
        extractors=tuple(args.extractors),
        max_images=args.max_images if args.max_images is not None else (32 if args.quick else None),
        calibration=8 if args.quick else 32,
        int8_rows=args.int8,
    )
    results = run_benchmark(args.teacher, students, resolve_data(args.data), args.out, options)
    print((Path(args.out) / "results.md").read_text())
    print(f"report: {Path(args.out) / 'report.html'} ({len(results['rows'])} rows)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import load_demo_recipe, run_demo

    recipe = load_demo_recipe(args.recipe, quick=args.quick, overrides=args.overrides)
    state = run_demo(args.out, quick=args.quick, recipe=recipe)
    print((Path(args.out) / "results.md").read_text())
    for name, entry in state.get("methods", {}).items():
        print(f"  {name:22s} {entry['status']}" + (f" — {entry['detail']}" if entry.get("detail") else ""))
    print(f"\nreport: {state['report']}  (open it in a browser)")
    return 0
