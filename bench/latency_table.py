"""Real speed: the ResNet teacher against GAN Compression's 22×-fewer-MACs subnet, in every runtime.

Both networks are measured in one run, with the same input (1×3×256×256 by default), the same
threads and the same export path, so the speed-up column compares like with like. Untrained
weights are used (speed does not depend on their values) except for int8, whose activation ranges
are calibrated on real images of the built-in dataset upsampled to the input size.

    python bench/latency_table.py                       # 1 thread (the default), all runtimes
    python bench/latency_table.py --repeats 10 --runtimes eager ort-fp32
    python bench/latency_table.py --runtimes openvino-fp32 --rewrites fold_norm_bias

Each runtime gets the deploy rewrites measured fastest for it (``RUNTIME_REWRITES``) unless
``--rewrites`` names one set for all. OpenVINO, ExecuTorch and ncnn rows need their optional extras
(they are marked skipped without them).

Writes runs/bench/latency.json (rows plus the environment) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from gancompress.bench.latency import (
    DEFAULT_THREADS,
    INT8_RUNTIMES,
    RUNTIMES,
    environment_line,
    format_table,
    measure_generator,
)
from gancompress.export.rewrite import RUNTIME_REWRITES
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator
from gancompress.utils.files import atomic_write_json

STUDENT_ARCH = "16_16_32_16_32_32_16_16"


def calibration(size: int, count: int) -> list[tuple[torch.Tensor]]:
    """Real glyph images (the built-in fonts dataset), resized to ``size``."""
    from gancompress.data import TransformConfig, build_dataset, ensure_builtin_dataset

    ds = build_dataset(ensure_builtin_dataset("fonts"), "paired", "train", TransformConfig.for_eval(size))
    step = max(1, len(ds) // count)
    return [(ds[i]["A"][None],) for i in range(0, len(ds), step)][:count]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument(
        "--min-time",
        type=float,
        default=0.0,
        help="seconds of timed calls at least, per row (repeats or more)",
    )
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    p.add_argument(
        "--rewrites",
        default=None,
        help="comma-separated rewrites for every runtime ('' for none); default: each runtime's own",
    )
    p.add_argument("--calibration", type=int, default=16, help="real images calibrating int8")
    p.add_argument("--out", default="runs/bench/latency.json")
    args = p.parse_args(argv)

    rewrites = None if args.rewrites is None else tuple(r for r in args.rewrites.split(",") if r)
    torch.manual_seed(0)
    models = {
        "teacher": create_generator("resnet").eval(),
        f"subnet {STUDENT_ARCH}": create_generator("resnet", arch=STUDENT_ARCH, separable=True).eval(),
    }
    calib = calibration(args.size, args.calibration) if set(INT8_RUNTIMES) & set(args.runtimes) else None
    macs = {}
    for name, g in models.items():
        prof = profile_generator(g, (args.size, args.size))
        macs[name] = {"macs_paper": prof.macs_paper, "macs_true": prof.macs_true, "params": prof.params}
    # runtime by runtime, the teacher then the subnet: the two rows of a speed-up are measured
    # minutes apart at most, so a change in what else runs on a shared machine falls less often
    # between them. Graphs are exported (and int8 calibrated) once per model and reused.
    by_model: dict[str, list[dict]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory(prefix="latency-graphs-") as graphs:
        for runtime in args.runtimes:
            for index, (name, g) in enumerate(models.items()):
                print(f"measuring {name} in {runtime} ...", file=sys.stderr, flush=True)
                by_model[name] += measure_generator(
                    g,
                    name=name,
                    runtimes=(runtime,),
                    size=(args.size, args.size),
                    threads=args.threads,
                    warmup=args.warmup,
                    repeats=args.repeats,
                    min_time_s=args.min_time,
                    rewrites=rewrites,
                    calibration=calib,
                    workdir=Path(graphs) / str(index),
                )
    rows = [row for name in models for row in by_model[name]]
    env = environment_line(args.threads)
    table = format_table(rows, baseline="teacher")
    ratio = macs["teacher"]["macs_paper"] / macs[f"subnet {STUDENT_ARCH}"]["macs_paper"]
    atomic_write_json(
        Path(args.out),
        {
            "environment": env,
            "rewrites": list(rewrites)
            if rewrites is not None
            else {k: list(v) for k, v in RUNTIME_REWRITES.items()},
            "macs": macs,
            "mac_ratio_paper": ratio,
            "rows": rows,
        },
    )
    print(env)
    shown = "per runtime (see the rows)" if rewrites is None else ", ".join(rewrites) or "none"
    print(f"MAC ratio (paper convention) {ratio:.1f}×; rewrites: {shown}")
    print(table)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
