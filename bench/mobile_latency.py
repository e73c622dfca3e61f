"""The deployment table: teacher and students in every runtime, mobile ones included, fp32 and int8.

One run measures the ResNet teacher, GAN Compression's released 22.5×-fewer-MACs subnet and any
saved students (``--student NAME=DIR``) in PyTorch eager, ``torch.compile``, ONNX Runtime, OpenVINO
(if installed), ExecuTorch + XNNPACK and ncnn (if installed), fp32 and int8, with the latency
harness's one protocol (threads, warm-up, median and percentiles, load). Runtime by runtime, the
teacher then the students, so the two rows of a speed-up are measured minutes apart at most.

Beside each speed-up over the teacher (same runtime) stands the model's MAC ratio and their
quotient (the issue's target: at least 0.8 in each mobile runtime, fp32), and for every int8 row
the PSNR of its output against the fp32 PyTorch output on real test images of the built-in dataset
(target: at least 30 dB where int8 is faster than fp32).

    python bench/mobile_latency.py                          # 256 px, 1 thread, every runtime
    python bench/mobile_latency.py --student ours=runs/fgc/generator --teacher runs/demo/teacher
    python bench/mobile_latency.py --tiny                   # a 32-px check that the script runs

Untrained weights give the latency columns (speed does not depend on the values) but meaningless
int8 PSNR: pass ``--teacher`` and ``--student`` directories of trained generators for those.
Writes runs/bench/mobile_latency.json and prints the markdown table with the environment line.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

from gancompress.bench.latency import (
    DEFAULT_THREADS,
    INT8_RUNTIMES,
    environment_line,
    get_runtime,
    measure_generator,
)
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator
from gancompress.utils.files import atomic_write_json

RELEASED_SUBNET = "16_16_32_16_32_32_16_16"
DEFAULT_RUNTIMES = (
    "eager",
    "compile",
    "ort-fp32",
    "ort-int8",
    "openvino-fp32",
    "openvino-int8",
    "executorch-fp32",
    "executorch-int8",
    "ncnn-fp32",
)
#: the fp32 row an int8 row is compared with (speed) in the same runtime family
FP32_OF = {"ort-int8": "ort-fp32", "openvino-int8": "openvino-fp32", "executorch-int8": "executorch-fp32"}


def real_images(size: int, count: int, split: str) -> list[tuple[torch.Tensor]]:
    """Real glyph images of the built-in fonts dataset at ``size`` (calibration: train; PSNR: test)."""
    from gancompress.data import TransformConfig, build_dataset, ensure_builtin_dataset

    ds = build_dataset(ensure_builtin_dataset("fonts"), "paired", split, TransformConfig.for_eval(size))
    step = max(1, len(ds) // count)
    return [(ds[i]["A"][None],) for i in range(0, len(ds), step)][:count]


def models(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    from gancompress.export.saved import load_generator

    torch.manual_seed(0)
    if args.tiny:
        return {
            "teacher": create_generator("resnet", base_width=8, num_blocks=3).eval(),
            "subnet (tiny)": create_generator("resnet", base_width=4, num_blocks=3, separable=True).eval(),
        }
    out = {"teacher": load_generator(args.teacher) if args.teacher else create_generator("resnet").eval()}
    out[f"released subnet {RELEASED_SUBNET}"] = create_generator(
        "resnet", arch=RELEASED_SUBNET, separable=True
    ).eval()
    for spec in args.student:
        name, _, path = spec.partition("=")
        out[name] = load_generator(path).eval()
    return out


def int8_psnr(generator, runtime: str, workdir: Path, images) -> float | None:
    """PSNR (dB) of an int8 program's output against fp32 PyTorch on real images (worst image)."""
    from gancompress.export.mobile import verify

    if runtime == "executorch-int8":
        from gancompress.export.executorch import executorch_callable

        files = sorted(workdir.glob("executorch-int8*.pte"))
        run = executorch_callable(files[0]) if files else None
        return verify(generator, lambda *x: run(*x)[0], images)["psnr_db_min"] if run else None
    if runtime == "ort-int8" and (workdir / "int8.onnx").is_file():
        from gancompress.export.onnx import ort_session, run_session

        session = ort_session(workdir / "int8.onnx")
        return verify(generator, lambda *x: run_session(session, *x), images)["psnr_db_min"]
    return None


def table(rows: list[dict], macs: dict[str, float]) -> str:
    """One markdown table: latency, speed-up over the teacher, MAC ratio and their quotient, int8 PSNR."""
    base = {r["runtime"]: r["median_ms"] for r in rows if r["name"] == "teacher" and r.get("median_ms")}
    ms = {(r["name"], r["runtime"]): r.get("median_ms") for r in rows}
    lines = [
        "| model | runtime | dtype | median ms | p10–p90 ms | load | speed-up vs teacher | MAC ratio "
        "| speed-up / MAC ratio | int8 vs fp32 speed | int8 PSNR vs fp32 dB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = macs["teacher"] / macs[r["name"]]
        if r.get("error"):
            cells = [
                r["name"],
                r["runtime"],
                r["dtype"],
                "–",
                r["error"],
                "–",
                "–",
                f"{ratio:.1f}×",
                "–",
                "–",
                "–",
            ]
        else:
            b = base.get(r["runtime"])
            speed = b / r["median_ms"] if b else None
            fp32 = ms.get((r["name"], FP32_OF.get(r["runtime"], "")))
            psnr = r["extra"].get("int8_psnr_db")
            load = f"{r['load_avg']:.2f}" + (" (measured under load)" if r.get("under_load") else "")
            cells = [
                r["name"],
                r["runtime"],
                r["dtype"],
                f"{r['median_ms']:.2f}",
                f"{r['p10_ms']:.2f}–{r['p90_ms']:.2f}",
                load if r.get("load_avg") is not None else "–",
                f"{speed:.1f}×" if speed else "–",
                f"{ratio:.1f}×",
                f"{speed / ratio:.2f}" if speed else "–",
                f"{fp32 / r['median_ms']:.2f}×" if fp32 else "–",
                "–" if psnr is None else ("∞" if math.isinf(psnr) else f"{psnr:.1f}"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="default 1")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--min-time", type=float, default=0.0, help="seconds of timed calls at least, per row")
    p.add_argument("--runtimes", nargs="+", default=list(DEFAULT_RUNTIMES))
    p.add_argument("--teacher", help="saved teacher directory (default: the untrained ResNet teacher)")
    p.add_argument("--student", action="append", default=[], metavar="NAME=DIR", help="repeatable")
    p.add_argument("--calibration", type=int, default=16, help="real images calibrating int8")
    p.add_argument("--psnr-images", type=int, default=8, help="real test images for int8 PSNR")
    p.add_argument("--tiny", action="store_true", help="tiny networks at 32 px, 2 repeats: a run check")
    p.add_argument("--out", default="runs/bench/mobile_latency.json")
    args = p.parse_args(argv)
    if args.tiny:
        args.size, args.warmup, args.repeats, args.calibration, args.psnr_images = 32, 1, 2, 2, 2
    for name in args.runtimes:
        get_runtime(name)  # unknown names fail before anything is measured

    nets = models(args)
    size = (args.size, args.size)
    macs = {name: profile_generator(g, size).macs_paper for name, g in nets.items()}
    int8 = set(INT8_RUNTIMES) & set(args.runtimes)
    calib = real_images(args.size, args.calibration, "train") if int8 else None
    test_images = real_images(args.size, args.psnr_images, "test") if int8 else None
    by_model: dict[str, list[dict]] = {name: [] for name in nets}
    with tempfile.TemporaryDirectory(prefix="mobile-latency-") as tmp:
        for runtime in args.runtimes:
            for index, (name, g) in enumerate(nets.items()):
                print(f"measuring {name} in {runtime} ...", file=sys.stderr, flush=True)
                workdir = Path(tmp) / str(index)
                (row,) = measure_generator(
                    g,
                    name=name,
                    runtimes=(runtime,),
                    size=size,
                    threads=args.threads,
                    warmup=args.warmup,
                    repeats=args.repeats,
                    min_time_s=args.min_time,
                    calibration=calib,
                    workdir=workdir,
                )
                if runtime in int8 and not row["error"]:
                    row["extra"]["int8_psnr_db"] = int8_psnr(g, runtime, workdir, test_images)
                by_model[name].append(row)
    rows = [row for name in nets for row in by_model[name]]
    env = environment_line(args.threads)
    text = table(rows, macs)
    atomic_write_json(Path(args.out), {"environment": env, "macs_paper": macs, "rows": rows, "table": text})
    print(env)
    print(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
