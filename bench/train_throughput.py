"""Training throughput (images/s) of the pix2pix ResNet teacher on this machine.

    python bench/train_throughput.py [--sizes 64 256] [--batches 1 4] [--steps 5] [--repeats 3] \
        [--base-width 64] [--threads N] [--device cpu] [--precisions fp32 bf16] [--channels-last] \
        [--out runs/bench/train_throughput.json]

Each row times full training steps of ``Pix2PixTask`` (ResNet-9blocks G and 3-layer PatchGAN D,
both at ``--base-width``; D update, then G update with GAN + L1 x100; Adam) on synthetic inputs, so
data loading is excluded; each step runs under the training loop's precision (``--precisions``: fp32,
bf16 autocast, fp16 with loss scaling on CUDA; see ``gancompress.training.precision``), optionally in
the channels-last memory format. After two warm-up steps, ``--repeats`` windows of ``--steps`` steps are
timed with ``time.perf_counter``; the row reports the median window's images/s (and the min/max).
The 1-minute load average is recorded beside the figures: on a shared machine it says how much of
the CPU the run had.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from gancompress.models import create_discriminator, create_generator
from gancompress.training.precision import resolve_precision
from gancompress.training.recipe import LossConfig, OptimConfig
from gancompress.training.tasks import Pix2PixTask


def pix2pix_task(base_width: int) -> Pix2PixTask:
    """The paper's pix2pix ResNet-9blocks teacher and 3-layer PatchGAN, both at ``base_width``."""
    torch.manual_seed(0)
    g = create_generator("resnet", base_width=base_width, num_blocks=9, norm="batch")
    d = create_discriminator("patchgan", in_channels=6, base_width=base_width, num_layers=3, norm="batch")
    return Pix2PixTask(g, d, LossConfig(), OptimConfig())


def time_steps(
    task: torch.nn.Module,
    batch_data: dict,
    steps: int,
    repeats: int,
    device: str,
    precision: str = "fp32",
    channels_last: bool = False,
) -> list[float]:
    """Images/s of ``repeats`` windows of ``steps`` training steps, after two warm-up steps."""
    prec = resolve_precision(precision, torch.device(device))
    task = task.to(device).train()
    if channels_last:
        task = task.to(memory_format=torch.channels_last)
        batch_data = {k: v.to(memory_format=torch.channels_last) for k, v in batch_data.items()}
    raw = dict(task.configure_optimizers())
    opts = prec.wrap(raw, raw)
    batch = next(iter(batch_data.values())).shape[0]

    def run(n: int) -> None:
        for s in range(n):
            prec.begin_step()
            with prec.autocast():
                task.training_step(batch_data, s, opts)
            prec.end_step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run(2)  # warm-up: allocator, kernels selection
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        rates.append(batch * steps / (time.perf_counter() - start))
    return rates


def measure(
    size: int,
    batch: int,
    steps: int,
    repeats: int,
    base_width: int,
    device: str,
    precision: str = "fp32",
    channels_last: bool = False,
) -> dict:
    task = pix2pix_task(base_width)
    batch_data = {
        "A": torch.rand(batch, 3, size, size, device=device) * 2 - 1,
        "B": torch.rand(batch, 3, size, size, device=device) * 2 - 1,
    }
    rates = time_steps(task, batch_data, steps, repeats, device, precision, channels_last)

    return {
        "size": size,
        "batch": batch,
        "precision": precision,
        "channels_last": channels_last,
        "images_per_s": statistics.median(rates),
        "images_per_s_min": min(rates),
        "images_per_s_max": max(rates),
        "steps_per_window": steps,
        "repeats": repeats,
        "load_avg_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=5, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument("--out", default="runs/bench/train_throughput.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {
        "model": f"pix2pix ResNet-9blocks G + PatchGAN D, base width {args.base_width}, batch norm",
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    rows = []
    print(f"{meta['model']}; {args.device}, torch {meta['torch']}, {meta['threads']} threads")
    print("| input | batch | precision | images/s (median) | min–max | load avg (1 min) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        for batch in args.batches:
            for precision in args.precisions:
                # Fewer steps at large sizes keep a 256-px row to minutes on a small CPU.
                steps = max(1, args.steps if size <= 128 else args.steps // 2)
                row = measure(
                    size,
                    batch,
                    steps,
                    args.repeats,
                    args.base_width,
                    args.device,
                    precision,
                    args.channels_last,
                )
                rows.append(row)
                print(
                    f"| {size}×{size} | {batch} | {precision} | {row['images_per_s']:.2f} | "
                    f"{row['images_per_s_min']:.2f}–{row['images_per_s_max']:.2f} | "
                    f"{row['load_avg_1min']:.1f} |",
                    flush=True,
                )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
