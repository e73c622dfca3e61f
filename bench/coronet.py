"""CoroNetGAN end to end on the built-in fonts task, at the MACs of the GAN Compression result.

    nice -n 10 python bench/coronet.py [--task pix2pix|cyclegan] [--teacher DIR] [--threads N] [--gc-results runs/bench/gan_compression/results.json]
                                       [--ratio 0.1] [--quick] [--set KEY=VALUE ...] [--out runs/bench/coronet]

The MACs target is the paper-convention MACs of the GAN Compression / Fast GAN Compression students
in ``--gc-results`` (written by ``bench/gan_compression.py``; the first of its students found), so
both methods are compared at the same cost; without that file, ``--ratio`` of the teacher's MACs
(default 0.1, GAN Compression's own default budget). The teacher is ``--teacher``, else the one the
GAN Compression benchmark used, else the architecture of ``configs/train/<task>_fonts.yaml`` with fresh
weights (the fonts recipe trains with the GAN's own objective and does not distil, so CoroNetGAN needs
only the teacher's family and widths; the teacher row is then not scored). ``--task cyclegan`` runs
the unpaired fonts variant with the CycleGAN objective (its test split still has pairs to score).

Every generator is scored on the held-out test split (characters never seen in training) exactly as
``bench/gan_compression.py`` does: PSNR / SSIM / L1 against the ground truth and FID on every offline
feature extractor available. Prints a table, writes ``OUT/results.json`` (with the device, torch
version, threads and input size) and the GAN Compression rows beside CoroNetGAN's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from gancompress.data import ensure_builtin_dataset
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.metrics.profile import profile_generator
from gancompress.utils.files import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_compression import score as gan_compression_score  # noqa: E402  (the sibling benchmark script)

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
GC_METHODS = ("gan-compression", "fast-gan-compression")


def score(generator: torch.nn.Module, root: Path, kind: str = "paired") -> dict:
    """The GAN Compression benchmark's scores (same extractors and metrics), at 64 px."""
    return gan_compression_score(generator, root, SIZE, kind)


def read_gc(path: Path) -> dict | None:
    """The GAN Compression benchmark's results, when that benchmark has been run."""
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def fresh_teacher(task: str):
    """The fonts teacher's architecture (configs/train/<task>_fonts.yaml) with fresh weights."""
    import yaml

    from gancompress.models import create_generator

    cfg = yaml.safe_load((REPO / "configs" / "train" / f"{task}_fonts.yaml").read_text())
    return create_generator(cfg["generator"]["name"], **cfg["generator"]["options"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", choices=("pix2pix", "cyclegan"), default="pix2pix", help="paired or unpaired fonts"
    )
    parser.add_argument("--teacher", help="saved teacher generator directory")
    parser.add_argument("--gc-results", default="runs/bench/gan_compression/results.json")
    parser.add_argument("--ratio", type=float, default=0.1, help="target without GAN Compression results")
    parser.add_argument("--quick", action="store_true", help="use configs/methods/coronet/fonts_quick.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="runs/bench/coronet")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paired = args.task == "pix2pix"
    kind = "paired" if paired else "unpaired"
    root = ensure_builtin_dataset("fonts", size=SIZE, paired=paired)
    # The GAN Compression benchmark runs the paired task; its MACs are the target of that task only.
    gc = read_gc(Path(args.gc_results)) if paired else None
    rows: dict[str, dict] = {}
    teacher_source = args.teacher
    if teacher_source is None and gc is not None:
        src = gc["rows"]["teacher"].get("source", "")
        trained_there = Path(args.gc_results).parent / "teacher" / "generator"  # trained by that benchmark
        teacher_source = src if src and Path(src).is_dir() else None
        if teacher_source is None and trained_there.is_dir():
            teacher_source = str(trained_there)
    if teacher_source is not None:
        teacher = load_generator(teacher_source)
        rows["teacher"] = score(teacher, root, kind) | {"source": teacher_source}
    else:
        teacher = fresh_teacher(args.task)
        prof = profile_generator(teacher, (SIZE, SIZE))
        rows["teacher"] = {
            "arch": str(teacher.arch),
            "params": prof.params,
            "macs_paper": prof.macs_paper,
            "macs_true": prof.macs_true,
            "source": f"configs/train/{args.task}_fonts.yaml architecture, untrained (not scored)",
        }
    if gc is not None:
        for method in GC_METHODS:
            if method in gc["rows"]:
                rows[method] = gc["rows"][method] | {"from": str(args.gc_results)}
    gc_rows = [rows[m] for m in GC_METHODS if m in rows]
    if gc_rows:
        why = f"MACs of the {next(m for m in GC_METHODS if m in rows)} result in {args.gc_results}"
        target = {"budget_macs": gc_rows[0]["macs_paper"], "why": why}
        options = MethodOptions(budget_macs=float(gc_rows[0]["macs_paper"]))
    else:
        target = {"ratio": args.ratio, "why": f"no {args.gc_results}: {args.ratio} of the teacher's MACs"}
        options = MethodOptions(ratio=args.ratio)
    # Never resumed: the wall time must be that of a whole run.
    options = MethodOptions(
        budget_macs=options.budget_macs,
        ratio=options.ratio,
        overrides=tuple(args.overrides),
        quick=args.quick,
        resume=False,
    )
    start = time.perf_counter()
    result = compress("coronet", teacher, root, out / "coronet", options)
    wall = time.perf_counter() - start
    row = score(result.generator, root, kind)
    row["wall_s"] = wall
    row["stages_s"] = result.summary["wall_time_s"]
    row["pruning"] = result.summary["pruning"]
    rows["coronet"] = row
    for r in rows.values():
        r["macs_reduction"] = rows["teacher"]["macs_paper"] / max(r["macs_paper"], 1)
    results = {
        "rows": rows,
        "task": f"fonts {args.task} ({kind})",
        "target": target,
        "recipe": "configs/methods/coronet/" + ("fonts_quick.yaml" if args.quick else "fonts.yaml"),
        "command": "nice -n 10 python bench/coronet.py " + " ".join(sys.argv[1:]),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "input": f"1x3x{SIZE}x{SIZE}",
        "test_images": row.get("num_images"),
    }
    atomic_write_json(out / "results.json", results)
    print_table(results)
    print(f"wrote {out / 'results.json'}")


def print_table(results: dict) -> None:
    """A markdown table of every row (teacher, GAN Compression rows if read, CoroNetGAN)."""
    rows = results["rows"]
    extractors = sorted({k for r in rows.values() for k in r.get("fid", {})})
    head = ["model", "arch", "params", "MACs (paper)", "reduction", "PSNR", "SSIM", "L1"]
    head += [f"FID {e}" for e in extractors] + ["wall s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    nan = float("nan")
    for name, r in rows.items():
        cells = [
            name,
            r["arch"],
            f"{r['params'] / 1e3:.1f}K",
            f"{r['macs_paper'] / 1e6:.1f}M",
            f"{r.get('macs_reduction', 1.0):.1f}x",
            f"{r.get('psnr', nan):.2f}",
            f"{r.get('ssim', nan):.3f}",
            f"{r.get('l1', nan):.4f}",
        ]
        cells += [f"{r.get('fid', {}).get(e) or nan:.2f}" for e in extractors]
        cells.append(f"{r.get('wall_s', nan):.0f}")
        print("| " + " | ".join(cells) + " |")
    p = rows["coronet"]["pruning"]
    print(
        f"target {p['target_macs'] / 1e6:.2f}M MACs ({results['target']['why']}); reached "
        f"{p['reached_macs'] / 1e6:.2f}M ({p['reached_over_target']:.3f} of it), "
        f"{'during training at step ' + str(p['stop_step']) if p['reached_during_training'] else 'by forcing ' + str(p['forced_units']) + ' units'}"
    )
    print(
        f"device {results['device']} ({results['cpu']}), torch {results['torch']}, "
        f"{results['threads']} threads, input {results['input']}, {results['test_images']} test images"
    )


if __name__ == "__main__":
    main()
