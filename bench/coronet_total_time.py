"""CoroNetGAN's total-time claim: train a teacher then compress it, against compressing from scratch.

    python bench/coronet_total_time.py [--task fonts|fashion] [--data DIR] [--ratio 0.1]
                                       [--gc-method fast-gan-compression|gan-compression]
                                       [--extractors domain,vgg] [--device cpu] [--threads 1]
                                       [--quick] [--out runs/bench/coronet_total_time]

(a) trains the task's teacher with ``gancompress train``'s recipe (fonts: ``configs/train/pix2pix_fonts.yaml``;
fashion: ``configs/train/cyclegan_fashion.yaml``), then compresses it with ``--gc-method`` (Fast GAN
Compression by default, its ``fonts.yaml`` recipe; 32-px unpaired settings for fashion) to ``--ratio``
of the teacher's MACs (0.1: at least 10x fewer paper-convention MACs). (b) runs CoroNetGAN without a
teacher (``configs/methods/coronet/<task>_scratch.yaml``: the same starting generator as that teacher,
trained from scratch with the GAN's own objective and pruned while it trains) to exactly the MACs of
(a)'s student. Both are timed end to end (every run starts over: nothing is resumed) and every model is
scored on the test split: PSNR / SSIM / L1 against the ground truth where the data is paired, and
FID (domain and VGG extractors, the domain one's content accuracy too) against the real images.

Fonts is the built-in task; fashion needs ``gancompress data prepare fashion --out DATA/fashion`` and
``--data DATA/fashion``. ``--quick`` is a smoke run only (tiny 32-px data built under ``OUT/data`` unless
``--data`` is given, base-width-8 networks, a few steps per stage): its figures mean nothing.
Prints a table and writes ``OUT/results.json`` with the command, device, threads, versions, CPU count
and load averages before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

import gancompress
from gancompress.data import build_font_dataset, ensure_builtin_dataset
from gancompress.errors import QualityGateError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.metrics.evaluate import evaluate_generator
from gancompress.metrics.profile import profile_generator
from gancompress.utils.files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TASKS: dict[str, dict[str, Any]] = {
    "fonts": {
        "teacher": "train/pix2pix_fonts.yaml",
        "compress": "fonts.yaml",
        "coronet": "methods/coronet/fonts_scratch.yaml",
        "size": 64,
        "paired": True,
        "compress_overrides": (),
    },
    "fashion": {
        "teacher": "train/cyclegan_fashion.yaml",
        "compress": "fonts.yaml",  # no fashion recipe: the fonts one at fashion's 32 px, unpaired
        "coronet": "methods/coronet/fashion_scratch.yaml",
        "size": 32,
        "paired": False,
        "compress_overrides": (
            "data.kind=unpaired",
            "data.load_size=32",
            "data.crop_size=32",
            "data.preprocess=resize",
            "data.flip=true",
        ),
    },
}
# --quick: tiny networks and a few steps, the same in (a) and (b) (the starting widths stay equal).
QUICK_SIZE = 32
QUICK_DATA = ("data.load_size=32", "data.crop_size=32", "data.batch_size=2")
QUICK_NET = ("generator.options.base_width=8", "generator.options.num_blocks=3")
QUICK = {
    "teacher": QUICK_NET + ("train.max_steps=20", "train.checkpoint_every=10", "train.log_every=5"),
    "compress": QUICK_DATA
    + (
        "data.holdout=4",
        "supernet.train.max_steps=10",
        "supernet.train.checkpoint_every=5",
        "finetune.max_steps=6",
        "search.population=4",
        "search.generations=2",
        "search.eval_batch_size=4",
        "search.calibration_batches=1",
        "planner.probe_steps=2",
    ),
    "coronet": QUICK_DATA
    + QUICK_NET
    + (
        "data.holdout=4",
        "hypernet.embedding_dim=2",
        "prune.regularization=20.0",
        "prune.lr_latent=0.05",
        "prune.train.max_steps=16",
        "prune.train.checkpoint_every=8",
        "finetune.max_steps=6",
        "planner.probe_steps=2",
    ),
}


def dataset(args: argparse.Namespace, task: dict, out: Path) -> Path:
    """The dataset root: ``--data``, else the built-in fonts, else (``--quick``) a tiny one built here."""
    if args.data:
        return Path(args.data)
    if args.quick:
        root = out / "data" / ("paired" if task["paired"] else "unpaired")
        if not root.is_dir():
            build_font_dataset(root, size=QUICK_SIZE, max_chars=24, seed=0, paired=task["paired"])
        return root
    if args.task != "fonts":
        raise SystemExit(f"--task {args.task} needs --data (gancompress data prepare {args.task} --out DIR)")
    return ensure_builtin_dataset("fonts", size=task["size"])


def score(generator: torch.nn.Module, root: Path, size: int, paired: bool, args: argparse.Namespace) -> dict:
    """Params, paper MACs at ``size`` px and the test-split scores (paired metrics and FID per extractor)."""
    result = evaluate_generator(
        generator,
        root,
        kind="paired" if paired else "unpaired",
        extractors=tuple(e for e in args.extractors.split(",") if e),
        batch_size=16,
        device=args.device,
        image_size=size,
        max_images=16 if args.quick else None,
    )
    prof = profile_generator(generator, (size, size))
    extractors = result.get("extractors", {})
    return {
        "arch": str(generator.arch),
        "params": prof.params,
        "macs_paper": prof.macs_paper,
        **{k: v for k, v in result.get("paired", {}).items() if k in ("psnr", "ssim", "l1")},
        "fid": {name: ex.get("fid") for name, ex in extractors.items()},
        "content_accuracy": {
            name: ex["content_accuracy"] for name, ex in extractors.items() if "content_accuracy" in ex
        },
        "skipped": result.get("skipped", {}),
        "num_images": result.get("num_images"),
    }


def run_compress(method: str, teacher: Any, root: Path, out: Path, options: MethodOptions) -> dict:
    """One whole compress run (never resumed): its student, summary and wall time, also after a failed gate."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    try:
        result = compress(method, teacher, root, out, options)
        generator, summary = result.generator, result.summary
    except QualityGateError:  # still timed and scored: the table says the gate failed
        summary = json.loads((out / "method_summary.json").read_text())
        generator = load_generator(out / "student.failed")
    return {"generator": generator.eval(), "summary": summary, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="fonts")
    parser.add_argument("--data", help="dataset root (fashion: the prepared folder; default: built-in fonts)")
    parser.add_argument(
        "--ratio", type=float, default=0.1, help="(a)'s target: this fraction of the teacher's MACs"
    )
    parser.add_argument(
        "--gc-method", choices=("fast-gan-compression", "gan-compression"), default="fast-gan-compression"
    )
    parser.add_argument("--extractors", default="domain,vgg", help="FID feature extractors, comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads for every stage (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run; its figures mean nothing")
    parser.add_argument("--out", default="runs/bench/coronet_total_time")
    args = parser.parse_args()
    if not 0 < args.ratio <= 0.1:
        raise SystemExit(f"--ratio must be in (0, 0.1] (at least 10x fewer MACs), got {args.ratio}")
    torch.set_num_threads(args.threads)
    from gancompress.training.recipe import load_train_recipe
    from gancompress.training.teacher import train_teacher

    task = TASKS[args.task]
    size = QUICK_SIZE if args.quick else task["size"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = dataset(args, task, out)
    load_start = os.getloadavg()

    # (a) teacher training, then compression of that teacher
    teacher_overrides = [f"data.root={root}", f"train.threads={args.threads}"]
    if args.quick:
        teacher_overrides += [
            *QUICK["teacher"],
            "data.load_size=32",
            "data.crop_size=32",
            "data.builtin_size=32",
        ]
    recipe = load_train_recipe(CONFIGS / task["teacher"], teacher_overrides)
    shutil.rmtree(out / "a_teacher", ignore_errors=True)
    start = time.perf_counter()
    trained = train_teacher(recipe, out / "a_teacher", resume=False, device=args.device, progress=False)
    teacher_s = time.perf_counter() - start
    torch.set_num_threads(args.threads)  # the teacher's recipe sets its own
    teacher_dir = Path(trained["generator"])
    teacher = load_generator(teacher_dir)
    folder = args.gc_method.replace("-", "_")
    gc_overrides = list(task["compress_overrides"]) + (list(QUICK["compress"]) if args.quick else [])
    if (teacher_dir / "discriminator.safetensors").is_file():  # as the paper, and `compress` does
        gc_overrides.append(f"discriminator.init_from={teacher_dir / 'discriminator.safetensors'}")
    gc_options = MethodOptions(
        recipe=str(CONFIGS / "methods" / folder / task["compress"]),
        overrides=tuple(gc_overrides),
        ratio=args.ratio,
        resume=False,
        device=args.device,
    )
    a = run_compress(args.gc_method, teacher, root, out / "a_compress", gc_options)
    a_macs = a["summary"]["student"]["macs_paper"]

    # (b) CoroNetGAN from scratch, to the MACs (a) reached
    coronet_options = MethodOptions(
        recipe=str(CONFIGS / task["coronet"]),
        overrides=tuple(QUICK["coronet"]) if args.quick else (),
        budget_macs=float(a_macs),
        resume=False,
        device=args.device,
    )
    b = run_compress("coronet", None, root, out / "b_coronet", coronet_options)
    start_arch = b["summary"]["details"]["start"]["arch"]
    load_end = os.getloadavg()

    rows = {
        "teacher": score(teacher, root, size, task["paired"], args),
        args.gc_method: score(a["generator"], root, size, task["paired"], args),
        "coronet": score(b["generator"], root, size, task["paired"], args),
    }
    for name, run in ((args.gc_method, a), ("coronet", b)):
        rows[name]["gate_passed"] = run["summary"]["gate"].get("passed")
        rows[name]["macs_reduction"] = rows["teacher"]["macs_paper"] / max(rows[name]["macs_paper"], 1)
    total_a, total_b = teacher_s + a["wall_s"], b["wall_s"]
    results = {
        "task": args.task,
        "data": str(root),
        "paired": task["paired"],
        "quick": args.quick,
        "rows": rows,
        "time_s": {
            "a_teacher_training": teacher_s,
            "a_compression": a["wall_s"],
            "a_total": total_a,
            "a_compression_stages": a["summary"]["wall_time_s"],
            "b_total": b["wall_s"],
            "b_stages": b["summary"]["wall_time_s"],
            "a_over_b": total_a / total_b if total_b else None,
        },
        "teacher_steps": trained.get("steps"),
        "target_macs": a_macs,
        "coronet_pruning": b["summary"]["details"]["pruning"],
        "same_start": start_arch == str(teacher.arch),  # (b) starts from the teacher's family and widths
        "recipes": {
            "teacher": f"configs/{task['teacher']}",
            args.gc_method: f"configs/methods/{folder}/{task['compress']}",
            "coronet": f"configs/{task['coronet']}",
        },
        "command": "python bench/coronet_total_time.py " + " ".join(sys.argv[1:]),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gancompress": gancompress.__version__,
        "python": platform.python_version(),
        "input": f"1x3x{size}x{size}",
        "load_avg_start": list(load_start),
        "load_avg_end": list(load_end),
    }
    atomic_write_json(out / "results.json", results)
    print_table(results, args.gc_method)
    print(f"wrote {out / 'results.json'}")


def print_table(results: dict, gc_method: str) -> None:
    """A markdown table of the three models, then the two total times and the run's conditions."""
    rows, t = results["rows"], results["time_s"]
    nan = float("nan")
    extractors = sorted({k for r in rows.values() for k in r["fid"]})
    head = ["model", "arch", "params", "MACs (paper)", "reduction", "PSNR", "SSIM"]
    accuracies = sorted({k for r in rows.values() for k in r["content_accuracy"]})
    head += [f"FID {e}" for e in extractors] + [f"content acc. {e}" for e in accuracies]
    head += ["gate", "total wall s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    walls = {"teacher": t["a_teacher_training"], gc_method: t["a_total"], "coronet": t["b_total"]}
    for name, r in rows.items():
        cells = [
            name,
            r["arch"],
            f"{r['params'] / 1e3:.1f}K",
            f"{r['macs_paper'] / 1e6:.2f}M",
            f"{r.get('macs_reduction', 1.0):.1f}x",
            f"{r.get('psnr', nan):.2f}",
            f"{r.get('ssim', nan):.3f}",
        ]
        cells += [f"{r['fid'].get(e) or nan:.2f}" for e in extractors]
        cells += [f"{r['content_accuracy'].get(e, nan):.3f}" for e in accuracies]
        gate = r.get("gate_passed")
        cells += ["-" if gate is None else "passed" if gate else "FAILED", f"{walls[name]:.0f}"]
        print("| " + " | ".join(cells) + " |")
    print(
        f"(a) teacher training {t['a_teacher_training']:.0f} s + {gc_method} {t['a_compression']:.0f} s = "
        f"{t['a_total']:.0f} s; (b) coronet from scratch {t['b_total']:.0f} s; (a)/(b) = {t['a_over_b']:.2f}"
    )
    print(
        f"task {results['task']} ({'paired' if results['paired'] else 'unpaired'}), target "
        f"{results['target_macs'] / 1e6:.3f}M MACs, same start as the teacher: {results['same_start']}; "
        f"device {results['device']} ({results['cpu']}, {results['cpu_count']} CPUs), "
        f"{results['threads']} threads, torch {results['torch']}, gancompress {results['gancompress']}, "
        f"input {results['input']}, load {results['load_avg_start'][0]:.2f} -> {results['load_avg_end'][0]:.2f}"
        + ("; --quick: a smoke run, not a measurement" if results["quick"] else "")
    )


if __name__ == "__main__":
    main()
