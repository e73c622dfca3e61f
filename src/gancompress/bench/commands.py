"""``gancompress benchmark`` and ``gancompress demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..utils.device import resolve_device
from ..utils.options import (
    SIZE_HELP,
    SIZE_OPTION,
    add_list_option,
    data_spec,
    device_option,
    device_spec,
    existing_path,
    json_option,
    non_negative_int,
    positive_int,
    square_side,
    threads_option,
)
from .latency import RUNTIMES

DEFAULT_RUNTIMES = ("eager", "ort-fp32", "ort-int8")


def register_cli(sub: argparse._SubParsersAction) -> None:
    from ..metrics.commands import known_extractor

    p = sub.add_parser(
        "benchmark",
        help="measure a teacher and compressed generators side by side; write results and a report",
    )
    p.add_argument(
        "--teacher",
        required=True,
        type=existing_path("any"),
        help="saved generator directory (or an official .pth)",
    )
    p.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a compressed generator to compare (repeatable)",
    )
    p.add_argument("--data", required=True, type=data_spec, help="dataset root, or builtin:fonts")
    p.add_argument("--out", required=True, help="output folder: results.json, results.md, plots, report.html")
    add_list_option(
        p, "--runtimes", allowed=RUNTIMES, default=DEFAULT_RUNTIMES, help=f"runtimes ({', '.join(RUNTIMES)})"
    )
    threads_option(p, benchmark=True)
    p.add_argument(
        "--device",
        type=device_spec,
        default="auto",
        help="where latency is measured: auto (the default: CUDA when available), cpu, cuda or cuda:N "
        "(CUDA events; eager-fp16, eager-bf16, cuda-graph and ort-cuda rows)",
    )
    p.add_argument("--size", **SIZE_OPTION, help=f"{SIZE_HELP}; square (default: the dataset's image size)")
    p.add_argument(
        "--repeats", type=positive_int(100_000), help="timed calls per runtime (default 20, quick 5)"
    )
    p.add_argument("--warmup", type=non_negative_int(10_000), help="untimed calls first (default 3, quick 1)")
    add_list_option(
        p,
        "--extractors",
        allowed=known_extractor,
        default=("domain",),
        help="FID/KID feature extractors (none: only PSNR/SSIM/L1)",
    )
    p.add_argument("--max-images", type=positive_int(), help="evaluate on at most this many test images")
    p.add_argument("--no-int8", dest="int8", action="store_false", help="no int8 row per model")
    p.add_argument("--quick", action="store_true", help="few repeats, 32 test images")
    json_option(p)
    from ..export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "demo",
        help="train a teacher on the built-in data, compress it with every method, benchmark, report",
        description="Train a teacher on the built-in fonts data, compress it with every method, benchmark "
        "and write a report. --quick trains for a few hundred steps (minutes on a small CPU); the full "
        "profile trains a real teacher and every method's full schedule (hours on a CPU).",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (resumable; default runs/demo)")
    p.add_argument("--quick", action="store_true", help="the quick profile (minutes on a small CPU)")
    p.add_argument(
        "--recipe",
        type=existing_path("file"),
        help="a demo profile YAML (default: configs/demo/quick.yaml or full.yaml)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile field, e.g. --set benchmark.threads=1 (repeatable)",
    )
    device_option(p, " (training and compression; the benchmark runs on the CPU)")
    threads_option(p)
    json_option(p)
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


def cmd_benchmark(args: argparse.Namespace) -> int:
    import dataclasses

    from ..cli import print_json
    from ..data.builtin import resolve_data_spec
    from .benchmark import BenchmarkOptions, run_benchmark

    students = parse_students(args.student)
    if not args.runtimes:
        raise ConfigError("--runtimes: give at least one runtime")
    extra = {}
    if "device" in {f.name for f in dataclasses.fields(BenchmarkOptions)}:
        extra["device"] = resolve_device(args.device)
    elif args.device not in ("auto", "cpu"):
        raise ConfigError(f"--device {args.device}: the benchmark measures on the CPU in this version")
    options = BenchmarkOptions(
        runtimes=tuple(args.runtimes),
        threads=args.threads,
        size=square_side(args.size),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 3),
        repeats=args.repeats if args.repeats is not None else (5 if args.quick else 20),
        extractors=tuple(args.extractors),
        max_images=args.max_images if args.max_images is not None else (32 if args.quick else None),
        calibration=8 if args.quick else 32,
        int8_rows=args.int8,
        **extra,
    )
    from ..export.resolve import overrides_from_args

    results = run_benchmark(
        args.teacher,
        students,
        resolve_data_spec(args.data),
        args.out,
        options,
        teacher_overrides=overrides_from_args(args),
    )
    if args.json:
        print_json(results)
        return 0
    print((Path(args.out) / "results.md").read_text())
    print(f"latency at {args.threads} CPU thread(s) (--threads N for another count)")
    print(f"report: {Path(args.out) / 'report.html'} ({len(results['rows'])} rows)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from .demo import load_demo_recipe, run_demo

    recipe = load_demo_recipe(args.recipe, quick=args.quick, overrides=args.overrides)
    state = run_demo(args.out, quick=args.quick, recipe=recipe, device=args.device)
    if args.json:
        print_json(state)
        return 0
    print((Path(args.out) / "results.md").read_text())
    for name, entry in state.get("methods", {}).items():
        print(f"  {name:22s} {entry['status']}" + (f" — {entry['detail']}" if entry.get("detail") else ""))
    print(f"\nreport: {state['report']}  (open it in a browser)")
    return 0
