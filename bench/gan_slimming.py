"""GAN Slimming GS-32 and GS-8 end to end on the built-in fonts task, against the teacher.

    nice -n 10 python bench/gan_slimming.py [--teacher DIR | --teacher-steps N] [--ratio 0.3] [--quick]
                                            [--set KEY=VALUE ...] [--threads N] [--out runs/bench/gan_slimming]

The teacher is ``--teacher`` (a saved pix2pix fonts generator, e.g. from
``gancompress train --task pix2pix --data builtin:fonts``), else one trained here through the training
loop with ``configs/train/pix2pix_fonts.yaml`` (``--teacher-steps`` shortens it). GS-32 and GS-8 run
with the same recipe and MACs target (``--ratio`` of the teacher's paper MACs).

Rows: paper-convention MACs at 64 px, parameters, bytes on disk (safetensors fp32; the int8 ONNX
graph), the paper's ratios r_c (teacher MACs / student MACs) and r_s (teacher bits / student bits:
32-bit teacher, ``bits``-bit student), and quality on the held-out test split (characters never seen
in training): PSNR / SSIM against the teacher's output, PSNR against the ground truth, and FID on the
shipped domain feature extractor. GS-8 is scored twice: its fp32 model (weights on the int8 grid)
and its int8 ONNX graph run in ONNX Runtime. Prints a table and writes ``OUT/results.json`` with the
device, torch version, threads and input size.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from gancompress.data import TransformConfig, build_dataset, ensure_builtin_dataset
from gancompress.export.onnx import ort_session, run_session
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.metrics.evaluate import evaluate_generator
from gancompress.metrics.paired import psnr, ssim
from gancompress.metrics.profile import profile_generator
from gancompress.utils.files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def get_teacher(args: argparse.Namespace, out: Path) -> tuple[Path, dict]:
    """The teacher's saved directory and how it was obtained (trained here, resumably, when not given)."""
    if args.teacher:
        return Path(args.teacher), {"source": args.teacher}
    from gancompress.training.recipe import load_train_recipe
    from gancompress.training.teacher import train_teacher

    overrides = [f"train.max_steps={args.teacher_steps}"] if args.teacher_steps else []
    recipe = load_train_recipe(REPO / "configs" / "train" / "pix2pix_fonts.yaml", overrides)
    summary = train_teacher(recipe, out / "teacher", progress=False)
    return Path(summary["generator"]), {
        "source": f"trained here: configs/train/pix2pix_fonts.yaml {' '.join(overrides)}".strip()
    }


@torch.no_grad()
def vs_teacher(run, teacher, root: Path) -> dict:
    """PSNR / SSIM of ``run(x)`` against the teacher's output on the test split."""
    test = build_dataset(root, "paired", "test", TransformConfig.for_eval(SIZE))
    p, s = [], []
    for start in range(0, len(test), 32):
        x = torch.stack([test[i]["A"] for i in range(start, min(start + 32, len(test)))])
        ref, out = teacher(x), run(x)
        p.append(psnr(out, ref))
        s.append(ssim(out, ref))
    return {"psnr_vs_teacher": float(torch.cat(p).mean()), "ssim_vs_teacher": float(torch.cat(s).mean())}


def score(generator, teacher, root: Path) -> dict:
    """Params, MACs, quality against the teacher and against the ground truth (with domain FID)."""
    generator.eval()
    prof = profile_generator(generator, (SIZE, SIZE))
    result = evaluate_generator(generator, root, kind="paired", extractors=("domain",), batch_size=32)
    return {
        "arch": str(generator.arch),
        "params": prof.params,
        "macs_paper": prof.macs_paper,
        "macs_true": prof.macs_true,
        "psnr_vs_gt": result.get("paired", {}).get("psnr"),
        "fid_domain": result.get("extractors", {}).get("domain", {}).get("fid"),
        "num_images": result.get("num_images"),
        **vs_teacher(generator, teacher, root),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="saved teacher generator directory (default: train one)")
    parser.add_argument("--teacher-steps", type=int, help="shorten the teacher's training to this many steps")
    parser.add_argument("--ratio", type=float, default=0.3, help="MACs target as a fraction of the teacher's")
    parser.add_argument("--quick", action="store_true", help="configs/methods/gan_slimming/fonts_quick.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default="runs/bench/gan_slimming")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--table", action="store_true", help="only print the table of OUT/results.json")
    args = parser.parse_args()
    if args.table:
        print_table(json.loads((Path(args.out) / "results.json").read_text()))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = ensure_builtin_dataset("fonts", size=SIZE)
    teacher_dir, teacher_info = get_teacher(args, out)
    teacher = load_generator(teacher_dir).eval()
    t_prof = profile_generator(teacher, (SIZE, SIZE))
    rows = {"teacher": score(teacher, teacher, root) | teacher_info}
    rows["teacher"]["bytes_safetensors"] = (teacher_dir / "model.safetensors").stat().st_size
    rows["teacher"].update(r_c=1.0, r_s=1.0, bits=32)
    for bits in (32, 8):
        name = f"GS-{bits}"
        options = MethodOptions(
            bits=bits, ratio=args.ratio, overrides=tuple(args.overrides), quick=args.quick
        )
        start = time.perf_counter()
        result = compress("gan-slimming", teacher, root, out / name.lower().replace("-", ""), options)
        wall = time.perf_counter() - start
        s = result.summary
        row = score(result.generator, teacher, root)
        row.update(
            bits=bits,
            bytes_safetensors=s["bytes_on_disk"]["safetensors"],
            bytes_onnx_int8=s["bytes_on_disk"]["onnx_int8"],
            r_c=t_prof.macs_paper / max(row["macs_paper"], 1),
            r_s=t_prof.params * 32 / max(row["params"] * bits, 1),
            target_macs=s["target"]["macs"],
            arch_from_rho=s["sparsity"]["arch_from_rho"],
            rho=s["sparsity"]["rho"],
            wall_s=wall,
        )
        rows[name] = row
        session = ort_session(result.artifacts["onnx_int8"])
        rows[f"{name} int8 ONNX"] = {
            "arch": row["arch"],
            "params": row["params"],
            "macs_paper": row["macs_paper"],
            "bits": 8,
            "bytes_onnx_int8": row["bytes_onnx_int8"],
            "r_c": row["r_c"],
            "r_s": t_prof.params * 32 / max(row["params"] * 8, 1),
            **vs_teacher(lambda x, sess=session: run_session(sess, x), teacher, root),
        }
    results = {
        "rows": rows,
        "ratio": args.ratio,
        "recipe": "configs/methods/gan_slimming/" + ("fonts_quick.yaml" if args.quick else "fonts.yaml"),
        "overrides": args.overrides,
        "command": "nice -n 10 python bench/gan_slimming.py " + " ".join(sys.argv[1:]),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "input": f"1x3x{SIZE}x{SIZE}",
        "test_images": rows["teacher"].get("num_images"),
    }
    atomic_write_json(out / "results.json", results)
    print_table(results)
    print(f"wrote {out / 'results.json'}")


def print_table(results: dict) -> None:
    """A markdown table of every row."""
    nan = float("nan")
    head = ["model", "arch", "params", "MACs (paper)", "r_c", "r_s", "bytes on disk", "PSNR vs teacher"]
    head += ["SSIM vs teacher", "PSNR vs GT", "FID (domain)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in results["rows"].items():
        size = r.get("bytes_onnx_int8") if name.endswith("ONNX") else r.get("bytes_safetensors")
        cells = [
            name,
            r["arch"],
            f"{r['params'] / 1e3:.1f}K",
            f"{r['macs_paper'] / 1e6:.1f}M",
            f"{r['r_c']:.2f}",
            f"{r['r_s']:.2f}",
            f"{size / 1e3:.1f} kB" if size else "",
            "–" if math.isinf(r.get("psnr_vs_teacher", nan)) else f"{r.get('psnr_vs_teacher', nan):.2f}",
            f"{r.get('ssim_vs_teacher', nan):.3f}",
            f"{r['psnr_vs_gt']:.2f}" if r.get("psnr_vs_gt") is not None else "",
            f"{r['fid_domain']:.2f}" if r.get("fid_domain") is not None else "",
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        f"recipe {results['recipe']} {' '.join(results['overrides'])}; target {results['ratio']} of the teacher's MACs; "
        f"device {results['device']} ({results['cpu']}), torch {results['torch']}, {results['threads']} threads, "
        f"input {results['input']}, {results['test_images']} test images"
    )


if __name__ == "__main__":
    main()
