"""Every student against its teacher on a dataset's test split, beside copying the input.

The compress run's quality gate scores a held-out slice of the *training* split; this scores the
test split (no image of it trained anything) with the same function (``metrics.gate.quality_gate``):
PSNR / SSIM / L1 of each student against the teacher's output and against the ground truth, beside
copying the input and the teacher itself, and the gate's verdict on those images.

    python bench/vs_teacher.py --teacher runs/photos/teacher/generator --data runs/photos/data \
        --student fgc=runs/photos/fgc/student --student gs=runs/photos/gs/student --size 256

Prints one row per student and writes --out (JSON) with the device, threads, versions and load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from gancompress.data import build_dataset
from gancompress.data.transforms import TransformConfig
from gancompress.export.resolve import load_any_generator
from gancompress.metrics.gate import quality_gate
from gancompress.utils.files import atomic_write_json


def test_batches(root: str, size: int, max_images: int | None, batch: int = 8) -> tuple[list, list]:
    """(inputs, targets): the test split at ``size`` px, resized, no crop or flip, in batches."""
    ds = build_dataset(root, "paired", "test", TransformConfig.for_eval(size))
    n = len(ds) if max_images is None else min(len(ds), max_images)
    xs, ys = [], []
    for start in range(0, n, batch):
        items = [ds[i] for i in range(start, min(n, start + batch))]
        xs.append(torch.stack([it["A"] for it in items]))
        ys.append(torch.stack([it["B"] for it in items]))
    return xs, ys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="saved teacher directory (or an official .pth)")
    p.add_argument("--student", action="append", default=[], metavar="NAME=DIR", help="repeatable")
    p.add_argument("--data", required=True, help="paired dataset folder with a test split")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/bench/vs_teacher.json")
    args = p.parse_args(argv)
    if not args.student:
        p.error("give at least one --student NAME=DIR")
    torch.set_num_threads(args.threads)
    teacher, _ = load_any_generator(args.teacher)
    teacher.eval()
    xs, ys = test_batches(args.data, args.size, args.max_images)
    rows = []
    t0 = time.perf_counter()
    for spec in args.student:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            p.error(f"--student {spec!r}: expected NAME=DIR")
        student, _ = load_any_generator(path)
        with torch.no_grad():
            gate = quality_gate(student.eval(), teacher, xs, ys)
        row = {
            "name": name,
            "path": path,
            "passed": gate.passed,
            "reasons": gate.reasons,
            "scores": gate.scores,
        }
        rows.append(row)
        s = gate.scores
        print(
            f"{name:10s} vs teacher {s['student_vs_teacher']['psnr']:6.2f} dB / SSIM {s['student_vs_teacher']['ssim']:.3f}"
            f"  (copying the input {s['copy_input_vs_teacher']['psnr']:.2f} dB / {s['copy_input_vs_teacher']['ssim']:.3f})"
            f"  vs ground truth {s['student_vs_ground_truth']['psnr']:.2f} dB"
            f"  (teacher {s['teacher_vs_ground_truth']['psnr']:.2f}, copying {s['copy_input_vs_ground_truth']['psnr']:.2f})"
            f"  gate {'passes' if gate.passed else 'FAILS: ' + gate.reason}"
        )
    env = {
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg": os.getloadavg()[0],
        "images": sum(int(x.shape[0]) for x in xs),
        "size": args.size,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"{env['images']} test images at {args.size} px; {env}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out), {"environment": env, "teacher": args.teacher, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
