"""GAN Compression and Fast GAN Compression end to end on a paired task (default: built-in fonts), teacher vs student.

    python bench/gan_compression.py [--teacher DIR | --teacher-steps N] [--methods fast-gan-compression gan-compression]
                                    [--data builtin:fonts | DIR] [--recipe-name fonts] [--size 64]
                                    [--quick] [--set KEY=VALUE ...] [--threads N] [--out runs/bench/gan_compression]

Takes a saved pix2pix teacher (``--teacher``, e.g. ``runs/teacher-pix2pix/generator`` from
``gancompress train --task pix2pix --data builtin:fonts``) or, on the fonts task only, trains one with
``configs/train/pix2pix_fonts.yaml`` (``--teacher-steps`` shortens it). Each method runs with its
``configs/methods/<method>/<recipe-name>.yaml`` recipe (``fonts.yaml`` by default, ``fonts_quick.yaml``
with ``--quick``; ``--set`` overrides any recipe field of both), under the recipe's budget (10x fewer
paper-convention MACs for the shipped ones). Teacher and students are scored on the held-out test
split at ``--size`` px by PSNR / SSIM / L1 against the ground truth and by FID against the real test
images on every offline feature extractor available (a domain classifier when the dataset has one
shipped, HED's VGG16). Prints a table and writes ``OUT/results.json`` with the wall time of every
stage, the device, torch version, threads and the load average.

    python bench/gan_compression.py --threads 1 --data runs/data/maps --recipe-name maps \
        --teacher runs/bench/gan_compression_maps/teacher/generator --methods fast-gan-compression \
        --out runs/bench/gan_compression_maps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from gancompress.data import ensure_builtin_dataset
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.metrics.evaluate import evaluate_generator
from gancompress.metrics.profile import profile_generator
from gancompress.utils.files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def get_teacher(args: argparse.Namespace, out: Path) -> tuple[Path, dict]:
    """The teacher's saved directory and how it was obtained (trained here when not given)."""
    if args.teacher:
        info: dict = {"source": args.teacher}
        summary = Path(args.teacher).parent / "summary.json"
        if summary.is_file():  # what `gancompress train` wrote: its steps and wall time
            data = json.loads(summary.read_text())
            runs = data.get("invocations") or []
            wall = sum(r.get("wall_s", 0.0) for r in runs) if runs else data.get("wall_s")
            info.update(steps=data.get("steps"), wall_s=wall)
        return Path(args.teacher), info
    if args.data != "builtin:fonts":
        raise SystemExit("--teacher is required for datasets other than builtin:fonts")
    from gancompress.training.recipe import load_train_recipe
    from gancompress.training.teacher import train_teacher

    overrides = [f"train.max_steps={args.teacher_steps}"] if args.teacher_steps else []
    recipe = load_train_recipe(REPO / "configs" / "train" / "pix2pix_fonts.yaml", overrides)
    start = time.perf_counter()
    summary = train_teacher(recipe, out / "teacher", progress=not args.no_progress)
    info = {
        "source": "configs/train/pix2pix_fonts.yaml" + (f" with {overrides[0]}" if overrides else ""),
        "steps": summary["steps"],
        "wall_s": time.perf_counter() - start,
    }
    return Path(summary["generator"]), info


def score(generator: torch.nn.Module, root: Path, size: int, kind: str = "paired") -> dict:
    """PSNR / SSIM / L1 and FID per extractor on the test split, plus params and paper MACs at ``size`` px."""
    result = evaluate_generator(
        generator, root, kind=kind, extractors=("domain", "vgg"), batch_size=32, image_size=size
    )
    prof = profile_generator(generator, (size, size))
    fids = {name: ex.get("fid") for name, ex in result.get("extractors", {}).items()}
    return {
        "arch": str(generator.arch),
        "params": prof.params,
        "macs_paper": prof.macs_paper,
        "macs_true": prof.macs_true,
        **result.get("paired", {}),
        "fid": fids,
        "skipped": result.get("skipped", {}),
        "num_images": result.get("num_images"),
    }


def relative(student: float, teacher: float, higher_is_better: bool) -> float:
    """How much worse the student is, as a fraction of the teacher's value (negative: better)."""
    diff = teacher - student if higher_is_better else student - teacher
    return diff / abs(teacher) if teacher else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="saved teacher generator directory (default: train one)")
    parser.add_argument("--teacher-steps", type=int, help="shorten the teacher's training to this many steps")
    parser.add_argument(
        "--methods", nargs="+", default=["fast-gan-compression", "gan-compression"], help="methods to run"
    )
    parser.add_argument("--data", default="builtin:fonts", help="builtin:fonts or a paired dataset folder")
    parser.add_argument("--recipe-name", default="fonts", help="configs/methods/<method>/<NAME>.yaml")
    parser.add_argument("--size", type=int, default=SIZE, help="evaluation and MACs size in px")
    parser.add_argument("--quick", action="store_true", help="use the <recipe-name>_quick recipes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="runs/bench/gan_compression")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = ensure_builtin_dataset("fonts", size=SIZE) if args.data == "builtin:fonts" else Path(args.data)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    teacher_dir, teacher_info = get_teacher(args, out)
    teacher = load_generator(teacher_dir)
    rows = {"teacher": score(teacher, root, args.size) | teacher_info}
    overrides = list(args.overrides)
    if (teacher_dir / "discriminator.safetensors").is_file():
        overrides.append(f"discriminator.init_from={teacher_dir / 'discriminator.safetensors'}")
    for method in args.methods:
        start = time.perf_counter()
        folder = "gan_compression" if method == "gan-compression" else "fast_gan_compression"
        name = args.recipe_name + ("_quick" if args.quick else "")
        recipe = REPO / "configs" / "methods" / folder / f"{name}.yaml"
        result = compress(
            method,
            teacher,
            root,
            out / method,
            MethodOptions(overrides=tuple(overrides), recipe=str(recipe), seed=0),
        )
        wall = time.perf_counter() - start
        row = score(result.generator, root, args.size)
        row["notes"] = result.summary.get("notes", {})
        row["wall_s"] = wall
        row["stages_s"] = result.summary.get("wall_time_s", {})
        row["search"] = result.summary.get("details", {}).get("search", {})
        row["macs_reduction"] = rows["teacher"]["macs_paper"] / max(row["macs_paper"], 1)
        row["psnr_drop"] = relative(
            row.get("psnr", float("nan")), rows["teacher"].get("psnr", float("nan")), True
        )
        row["fid_rise"] = {
            k: relative(v, rows["teacher"]["fid"].get(k), False)
            for k, v in row["fid"].items()
            if v is not None and rows["teacher"]["fid"].get(k)
        }
        rows[method] = row
    results = {
        "rows": rows,
        "total_wall_s": time.perf_counter() - t0,
        "command": "python bench/gan_compression.py " + " ".join(_argv(args)),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "input": f"1x3x{args.size}x{args.size}",
        "data": str(root),
        "load_avg_start": list(load_start),
        "load_avg_end": list(os.getloadavg()),
        "test_images": rows["teacher"].get("num_images"),
    }
    atomic_write_json(out / "results.json", results)
    print_table(results)
    print(f"wrote {out / 'results.json'}")


def _argv(args: argparse.Namespace) -> list[str]:
    import sys

    return sys.argv[1:]


def print_table(results: dict) -> None:
    rows = results["rows"]
    extractors = sorted({k for r in rows.values() for k in r["fid"]})
    head = ["model", "arch", "params", "MACs (paper)", "reduction", "PSNR", "SSIM", "L1"]
    head += [f"FID {e}" for e in extractors] + ["wall s"]
    print(" | ".join(head))
    for name, r in rows.items():
        cells = [
            name,
            r["arch"],
            f"{r['params'] / 1e3:.1f}K",
            f"{r['macs_paper'] / 1e6:.1f}M",
            f"{r.get('macs_reduction', 1.0):.1f}x",
            f"{r.get('psnr', float('nan')):.2f}",
            f"{r.get('ssim', float('nan')):.3f}",
            f"{r.get('l1', float('nan')):.4f}",
        ]
        cells += [f"{r['fid'].get(e, float('nan')) or float('nan'):.2f}" for e in extractors]
        cells.append(f"{r.get('wall_s', float('nan')):.0f}")
        print(" | ".join(cells))
    print(
        f"device {results['device']} ({results['cpu']}), torch {results['torch']}, "
        f"{results['threads']} threads, input {results['input']}, {results['test_images']} test images, "
        f"total {results['total_wall_s']:.0f} s"
    )
    print(json.dumps({k: r.get("psnr_drop") for k, r in rows.items() if k != "teacher"}))


if __name__ == "__main__":
    main()
