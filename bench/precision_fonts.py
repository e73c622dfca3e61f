"""bf16 autocast against fp32 on the fonts task: the PSNR each precision trains to.

    python bench/precision_fonts.py [--precisions fp32 bf16] [--teacher-steps 1500] \
        [--method fast-gan-compression] [--ratio 0.3] [--threads 1] [--device cpu] \
        [--out runs/bench/precision_fonts.json] [--quick]

Two measurements per precision, both on the built-in fonts dataset (paired glyphs):

1. **teacher**: ``gancompress train`` of the pix2pix fonts recipe (``configs/train/pix2pix_fonts.yaml``)
   for ``--teacher-steps`` steps in that precision (``train.precision``); PSNR / SSIM of the saved
   generator on the test split (``eval.json``, computed in fp32 outside autocast).
2. **compress** (``--method``, ``none`` to skip): the method's quick fonts recipe, compressing the
   *fp32* teacher from step 1 to ``--ratio`` of its MACs with every stage in that precision; PSNR of
   the student against the ground truth on the held-out images (the quality gate's scores).

Same seed, data and schedule in every precision, so the difference is the precision's. The issue's
target: bf16 within 1 dB of fp32 (``within_1db`` in the JSON, per measurement). The device, torch
version, threads and the 1-minute load average are recorded beside the figures. ``--quick`` runs a
tiny version (32-px glyphs, width-4 networks, a few steps) only to check that the script works; its
figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gancompress.errors import QualityGateError

QUICK_TEACHER = (
    "data.load_size=32",
    "data.crop_size=32",
    "generator.options={base_width: 4, num_blocks: 3, norm: instance}",
    "discriminator.base_width=4",
    "discriminator.num_layers=2",
    "train.checkpoint_every=4",
    "train.log_every=2",
    "train.num_samples=2",
)
QUICK_COMPRESS = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "discriminator.base_width=4",
    "discriminator.num_layers=2",
    "supernet.train.max_steps=4",
    "supernet.train.checkpoint_every=2",
    "search.population=4",
    "search.generations=1",
    "search.eval_batch_size=4",
    "search.calibration_batches=1",
    "finetune.max_steps=2",
    "finetune.checkpoint_every=2",
)


def train_teacher_in(precision: str, data: Path, out: Path, steps: int, device: str, quick: bool) -> dict:
    """Train the pix2pix fonts teacher in ``precision``; its test-split scores and wall time."""
    from gancompress.training.recipe import default_recipe_path, load_train_recipe
    from gancompress.training.teacher import train_teacher

    overrides = [f"data.root={data}", f"train.max_steps={steps}", f"train.precision={precision}"]
    if quick:
        overrides += list(QUICK_TEACHER)
    recipe = load_train_recipe(default_recipe_path("pix2pix"), overrides)
    start = time.perf_counter()
    summary = train_teacher(recipe, out, resume=False, device=device, progress=False)
    return {"steps": steps, "wall_s": time.perf_counter() - start, **summary["eval"]}


def compress_in(
    precision: str,
    method: str,
    teacher_dir: Path,
    data: Path,
    out: Path,
    ratio: float,
    device: str,
    quick: bool,
) -> dict:
    """Compress the fp32 teacher with every stage in ``precision``; the student's held-out PSNR vs ground truth."""
    from gancompress.export.saved import load_generator
    from gancompress.methods import MethodOptions, compress

    options = MethodOptions(
        quick=True,
        ratio=ratio,
        device=device,
        precision=precision,
        resume=False,
        overrides=QUICK_COMPRESS if quick else (),
    )
    start = time.perf_counter()
    try:
        compress(method, load_generator(teacher_dir), data, out, options)
        gate_failed = None
    except QualityGateError as exc:  # the summary is written all the same, with the scores
        gate_failed = str(exc)
    summary = json.loads((out / "method_summary.json").read_text())
    scores = summary["gate"].get("scores", {})
    vs_truth = scores.get("student_vs_ground_truth", {})
    return {
        "wall_s": time.perf_counter() - start,
        "psnr": vs_truth.get("psnr"),
        "ssim": vs_truth.get("ssim"),
        "psnr_vs_teacher": scores.get("student_vs_teacher", {}).get("psnr"),
        "student_arch": summary["student"]["arch"],
        "macs_ratio": summary["macs_ratio"],
        "gate_failed": gate_failed,
    }


def compare(rows: dict[str, dict], key: str = "psnr") -> dict[str, Any]:
    """Each lower precision's PSNR minus fp32's, and whether it lies within 1 dB."""
    base = rows.get("fp32", {}).get(key)
    out = {}
    for name, row in rows.items():
        if name == "fp32" or base is None or row.get(key) is None:
            continue
        delta = row[key] - base
        out[name] = {"delta_db": delta, "within_1db": abs(delta) <= 1.0}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--teacher-steps", type=int, default=1500)
    p.add_argument("--method", default="fast-gan-compression", help="compression method, or 'none'")
    p.add_argument("--ratio", type=float, default=0.3, help="student MACs as a fraction of the teacher's")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the figures are PSNR)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=None, help="run directories (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/precision_fonts.json"))
    p.add_argument("--quick", action="store_true", help="tiny sizes and 4 steps: checks the script only")
    args = p.parse_args(argv)
    if "fp32" not in args.precisions:
        p.error("--precisions must include fp32, the reference")
    torch.set_num_threads(args.threads)
    steps = 4 if args.quick else args.teacher_steps

    with tempfile.TemporaryDirectory(prefix="precision-fonts-") as tmp:
        work = args.work or Path(tmp)
        from gancompress.data import build_font_dataset
        from gancompress.data.builtin import resolve_data_spec

        if args.quick:
            data = build_font_dataset(work / "fonts", size=32, max_chars=24, seed=0)
        else:
            data = resolve_data_spec("builtin:fonts")
        teachers = {}
        for prec in args.precisions:
            teachers[prec] = train_teacher_in(
                prec, data, work / f"teacher-{prec}", steps, args.device, args.quick
            )
            print(f"teacher {prec}: PSNR {teachers[prec]['psnr']:.2f} dB after {steps} steps", flush=True)
        students = {}
        if args.method != "none":
            teacher_dir = work / "teacher-fp32" / "generator"
            for prec in args.precisions:
                out = work / f"{args.method}-{prec}"
                students[prec] = compress_in(
                    prec, args.method, teacher_dir, data, out, args.ratio, args.device, args.quick
                )
                psnr = students[prec]["psnr"]
                shown = f"{psnr:.2f} dB" if psnr is not None else "n/a"
                print(f"{args.method} {prec}: student PSNR {shown} vs ground truth", flush=True)

    report = {
        "benchmark": "precision_fonts",
        "quick": args.quick,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "teacher": {"recipe": "configs/train/pix2pix_fonts.yaml", "steps": steps, "rows": teachers},
        "teacher_vs_fp32": compare(teachers),
        "compress": {"method": args.method, "ratio": args.ratio, "rows": students} if students else None,
        "compress_vs_fp32": compare(students) if students else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for what in ("teacher_vs_fp32", "compress_vs_fp32"):
        for prec, c in (report[what] or {}).items():
            verdict = "within" if c["within_1db"] else "NOT within"
            print(f"{what.replace('_vs_fp32', '')} {prec} - fp32: {c['delta_db']:+.2f} dB ({verdict} 1 dB)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
