"""The device check: what to run whenever a GPU is available (under 8 minutes on one GPU).

    python bench/device_check.py --device cuda --out runs/device_check          # the check
    python bench/device_check.py --device cpu --tiny --out runs/device_check     # the same code, tiny, on a CPU
    bench/device_check.sh [OUT]                                                  # the check, with a time limit

Sections, each written to ``OUT/device_check.json`` as soon as it is done (a section that fails
records its error and the others still run):

- ``compress``: a tiny compress of every registered method (32-px fonts, a ResNet teacher of base
  width 8, a few steps per stage) on ``--device`` in each of ``--precisions``, through
  ``gancompress.methods.compress`` with ``MethodOptions(device=..., precision=...)``;
- ``teacher_training``: images/s of full training steps of the pix2pix ResNet-9blocks ngf64 teacher
  and its PatchGAN at 256 px (``bench/train_throughput.py``), per precision, with the bf16/fp32 ratio;
- ``supernet_training``: images/s of Fast GAN Compression's supernet distillation step (supernet of
  that teacher, widths ×{0.5, 0.375, 0.25}, one uniformly sampled subnet per step) at 256 px;
- ``latency``: forward latency at 1×3×256×256 of the teacher and GAN Compression's released subnet
  ``16_16_32_16_32_32_16_16`` (separable), per precision (CUDA events after a warm-up on a GPU).

``--tiny`` shrinks every size (32 px, base width 4-8, 1-step windows) so the check runs on a CPU in
a few minutes; its figures mean nothing, it only shows that the code runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_throughput beside this file

import train_throughput  # noqa: E402

from gancompress.utils.files import atomic_write_json  # noqa: E402

SUBNET_ARCH = "16_16_32_16_32_32_16_16"  # GAN Compression's released edges2shoes subnet, 22.5x fewer MACs
# Per-method recipe overrides of the tiny compress: 32-px data, small discriminators, a few steps.
TINY_DATA = ("data.load_size=32", "data.crop_size=32", "data.batch_size=2", "data.holdout=4")
TINY_COMPRESS = {
    "gan-compression": (
        *TINY_DATA,
        "discriminator.base_width=4",
        "mobile_teacher.train.max_steps=4",
        "supernet.train.max_steps=4",
        "finetune.max_steps=2",
    ),
    "fast-gan-compression": (
        *TINY_DATA,
        "discriminator.base_width=4",
        "supernet.train.max_steps=4",
        "search.population=4",
        "search.generations=1",
        "finetune.max_steps=2",
    ),
    "gan-slimming": (
        *TINY_DATA,
        "discriminator.base_width=4",
        "slim.train.max_steps=4",
        "slim.train.checkpoint_every=2",
        "finetune.max_steps=2",
        "quant.calibration_images=4",
    ),
    "coronet": (
        *TINY_DATA,
        "hypernet.embedding_dim=2",
        "discriminator.base_width=4",
        "prune.train.max_steps=4",
        "prune.train.checkpoint_every=2",
        "finetune.max_steps=2",
    ),
}


def environment(device: str) -> dict:
    env = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
    }
    if device.startswith("cuda"):
        dev = torch.device(device)
        env.update(
            gpu=torch.cuda.get_device_name(dev),
            capability=".".join(map(str, torch.cuda.get_device_capability(dev))),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return env


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def check_compress(args: argparse.Namespace, work: Path) -> list[dict]:
    from gancompress.data import build_font_dataset
    from gancompress.methods import MethodOptions, compress, list_methods
    from gancompress.models import create_generator

    data = build_font_dataset(work / "fonts", size=32, max_chars=20, seed=0)
    rows = []
    for method in args.methods or list_methods():
        fp32_student = None
        for precision in args.precisions:
            torch.manual_seed(0)
            teacher = create_generator("resnet", base_width=8, num_blocks=3)
            options = MethodOptions(
                device=args.device,
                precision=precision,
                quick=True,
                ratio=0.5,
                overrides=TINY_COMPRESS.get(method, TINY_DATA),
                resume=False,
            )
            row: dict = {"method": method, "precision": precision}
            start = time.perf_counter()
            try:
                result = compress(method, teacher, data, work / "compress" / f"{method}-{precision}", options)
                row.update(status="ok", student_arch=str(result.generator.arch))
                student = {k: v.detach().cpu() for k, v in result.generator.state_dict().items()}
                if precision == "fp32":
                    fp32_student = student
                elif fp32_student is not None:
                    # Bit-identical to the fp32 student: the method did not train in this precision.
                    row["differs_from_fp32"] = not (
                        student.keys() == fp32_student.keys()
                        and all(torch.equal(student[k], fp32_student[k]) for k in student)
                    )
            except Exception as exc:  # a failing method is a finding of the check, not its end
                row.update(status="error", error=f"{type(exc).__name__}: {exc}")
            row["wall_s"] = time.perf_counter() - start
            print(f"compress {method} {precision}: {row['status']} in {row['wall_s']:.1f} s", flush=True)
            rows.append(row)
    return rows


def _with_ratio(rows: list[dict]) -> dict:
    by = {r["precision"]: r["images_per_s"] for r in rows}
    out: dict = {"rows": rows}
    if "fp32" in by and "bf16" in by:
        out["bf16_over_fp32"] = by["bf16"] / by["fp32"]
    return out


def check_teacher_training(args: argparse.Namespace) -> dict:
    size, width = (32, 4) if args.tiny else (256, 64)
    rows = []
    for precision in args.precisions:
        row = train_throughput.measure(
            size, args.batch, args.steps, args.repeats, width, args.device, precision, args.channels_last
        )
        print(f"teacher training {size}px {precision}: {row['images_per_s']:.2f} img/s", flush=True)
        rows.append(row | {"base_width": width})
    return _with_ratio(rows)


def supernet_task(base_width: int):
    """Fast GAN Compression's supernet-distillation Task for the ResNet ngf ``base_width`` teacher."""
    from gancompress.methods.gan_compression.distill import DistillTask, FeatureAdapters, default_points
    from gancompress.methods.gan_compression.recipe import LossConfig, StageConfig
    from gancompress.methods.gan_compression.search_space import SearchSpace
    from gancompress.methods.gan_compression.supernet import ArchSampler, build_supernet
    from gancompress.models import create_discriminator, create_generator

    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=base_width, num_blocks=9).eval()
    space = SearchSpace.for_generator(teacher, {"*": [0.5, 0.375, 0.25]})
    student = build_supernet(teacher, space)
    points = default_points(teacher)
    adapters = FeatureAdapters(
        {p: student.feature_channels()[p] for p in points}, {p: teacher.feature_channels()[p] for p in points}
    )
    disc = create_discriminator("patchgan", in_channels=6, base_width=base_width, num_layers=3)
    loss = LossConfig(recon=100.0, distill=1.0, gan=1.0, gan_mode="hinge")
    return DistillTask(
        student, teacher, disc, adapters, loss, StageConfig(), ArchSampler(space, "uniform", 0)
    )


def check_supernet_training(args: argparse.Namespace) -> dict:
    size, width = (32, 8) if args.tiny else (256, 64)
    rows = []
    for precision in args.precisions:
        if precision == "fp16":
            rows.append({"precision": precision, "skipped": "the distillation Task does not scale its loss"})
            continue
        task = supernet_task(width)
        batch = {
            "A": torch.rand(args.batch, 3, size, size, device=args.device) * 2 - 1,
            "B": torch.rand(args.batch, 3, size, size, device=args.device) * 2 - 1,
        }
        rates = train_throughput.time_steps(
            task, batch, args.steps, args.repeats, args.device, precision, args.channels_last
        )
        rate = sorted(rates)[len(rates) // 2]
        print(f"supernet training {size}px {precision}: {rate:.2f} img/s", flush=True)
        rows.append(
            {
                "precision": precision,
                "size": size,
                "batch": args.batch,
                "base_width": width,
                "images_per_s": rate,
                "images_per_s_min": min(rates),
                "images_per_s_max": max(rates),
            }
        )
    return _with_ratio([r for r in rows if "images_per_s" in r]) | {"all": rows}


def check_latency(args: argparse.Namespace) -> list[dict]:
    from gancompress.bench.latency import time_calls
    from gancompress.metrics.profile import profile_generator
    from gancompress.models import create_generator

    size = 32 if args.tiny else 256
    torch.manual_seed(0)
    models = {
        "teacher": create_generator("resnet").eval(),
        f"subnet {SUBNET_ARCH}": create_generator("resnet", arch=SUBNET_ARCH, separable=True).eval(),
    }
    rows = []
    for name, g in models.items():
        prof = profile_generator(g, (size, size))
        g = g.to(args.device)
        if args.channels_last:
            g = g.to(memory_format=torch.channels_last)
        x = torch.rand(1, 3, size, size, device=args.device) * 2 - 1
        for precision in args.precisions:
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
            if dtype is not None and precision == "fp16" and not args.device.startswith("cuda"):
                continue

            def call(g=g, x=x, dtype=dtype) -> None:
                with (
                    torch.inference_mode(),
                    torch.autocast(args.device.split(":")[0], dtype, enabled=dtype is not None),
                ):
                    g(x)

            stats = time_calls(call, warmup=args.warmup, repeats=args.latency_repeats, device=args.device)
            print(f"latency {name} {precision}: {stats.median_ms:.3f} ms", flush=True)
            rows.append(
                {
                    "model": name,
                    "precision": precision,
                    "size": size,
                    "macs_paper": prof.macs_paper,
                    "median_ms": stats.median_ms,
                    "p10_ms": stats.p10_ms,
                    "p90_ms": stats.p90_ms,
                    "repeats": stats.repeats,
                    "warmup": stats.warmup,
                    "timer": "cuda events" if args.device.startswith("cuda") else "perf_counter",
                }
            )
    return rows


SECTIONS = ("compress", "teacher_training", "supernet_training", "latency")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="runs/device_check", help="folder of device_check.json")
    p.add_argument("--tiny", action="store_true", help="tiny sizes everywhere: checks the code on a CPU")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--methods", nargs="+", help="methods to compress (default: every registered one)")
    p.add_argument("--batch", type=int, default=4, help="training batch of the throughput sections")
    p.add_argument("--steps", type=int, default=None, help="steps per timed window (default: 5, tiny 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed windows per throughput row")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before latency")
    p.add_argument("--latency-repeats", type=int, default=50)
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = 1 if args.tiny else 5
    if args.tiny:
        args.batch, args.repeats = min(args.batch, 2), 1
        args.warmup, args.latency_repeats = min(args.warmup, 2), min(args.latency_repeats, 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("device_check: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    out = Path(args.out)
    report: dict = {"environment": environment(args.device), "tiny": args.tiny, "sections": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        for name in args.sections:
            t0 = time.perf_counter()
            try:
                if name == "compress":
                    result: object = check_compress(args, Path(tmp))
                else:
                    result = {
                        "teacher_training": check_teacher_training,
                        "supernet_training": check_supernet_training,
                        "latency": check_latency,
                    }[name](args)
                report["sections"][name] = {"status": "ok", "result": result}
            except Exception as exc:  # one broken section must not hide the others' figures
                traceback.print_exc()
                report["sections"][name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            _sync(args.device)
            report["sections"][name]["wall_s"] = time.perf_counter() - t0
            report["wall_s"] = time.perf_counter() - start
            atomic_write_json(out / "device_check.json", report)
    failed = [n for n, s in report["sections"].items() if s["status"] != "ok"]
    failed += [
        f"compress {r['method']} {r['precision']}"
        for r in report["sections"].get("compress", {}).get("result") or []
        if r.get("status") != "ok"
    ]
    print(json.dumps({"out": str(out / "device_check.json"), "wall_s": report["wall_s"], "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
