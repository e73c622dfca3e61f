"""int8 fidelity of a ResNet teacher on real photos: PSNR of each calibration setting's int8 graph
against the fp32 graph (the numbers behind the int8 defaults, docs/deployment.md §int8).

    nice -n 10 python bench/int8_quality.py --data DIR [--teacher DIR | --train-width 16 --train-steps 300]
                                            [--size 256] [--calibration 16] [--test 8] [--out runs/bench/int8]

``--data`` is a paired photo dataset (``gancompress data prepare photos``). Without ``--teacher`` a
ResNet-9 teacher (affine InstanceNorm, as CycleGAN checkpoints often are) is trained here with L1 on the
dataset's A → B task at ``--crop`` px for ``--train-steps`` steps: a trained network's activations,
which a random one does not have. Calibration images come from the train split, scored images from
the test split (other scenes), both at ``--size``. Prints a table and writes ``OUT/results.json``
with the device, versions, threads and load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gancompress.data import TransformConfig, build_dataset  # noqa: E402
from gancompress.export.int8 import (  # noqa: E402
    QUANTIZED_OPS,
    calibration_inputs,
    int8_fidelity,
    quantize_onnx_int8,
)
from gancompress.export.onnx import export_onnx  # noqa: E402
from gancompress.export.saved import load_generator, save_generator  # noqa: E402
from gancompress.models import create_generator  # noqa: E402

SETTINGS = {
    "minmax": dict(method="minmax", keep_fp32=()),
    "entropy": dict(method="entropy", keep_fp32=()),
    "percentile-99.999": dict(method="percentile", percentile=99.999, keep_fp32=()),
    "percentile-99.99": dict(method="percentile", percentile=99.99, keep_fp32=()),
    "minmax, first+last fp32": dict(method="minmax", keep_fp32=("first", "last")),
    "percentile-99.999, first+last fp32": dict(method="percentile", percentile=99.999, keep_fp32=("first", "last")),
    "percentile-99.99, first+last fp32": dict(method="percentile", percentile=99.99, keep_fp32=("first", "last")),
    "percentile-99.999, first+last fp32, Add fp32": dict(
        method="percentile", percentile=99.999, keep_fp32=("first", "last"),
        op_types=tuple(op for op in QUANTIZED_OPS if op != "Add"),
    ),
}  # fmt: skip


def train_teacher(data: Path, width: int, steps: int, crop: int, lr: float, out: Path) -> tuple[Path, float]:
    torch.manual_seed(0)
    g = create_generator("resnet", base_width=width, norm="instance", norm_affine=True)
    ds = build_dataset(
        data, "paired", "train", TransformConfig(load_size=crop, crop_size=crop, preprocess="crop")
    )
    opt = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(len(ds), (4,), generator=gen).tolist()
        batch = [ds[i] for i in idx]
        a, b = torch.stack([s["A"] for s in batch]), torch.stack([s["B"] for s in batch])
        loss = (g(a) - b).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"train step {step} L1 {loss.item():.4f}", file=sys.stderr, flush=True)
    save_generator(
        g.eval(), out, extra={"trained": f"L1, {steps} steps, batch 4, {crop}-px crops, Adam lr {lr}"}
    )
    return out, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--teacher", type=Path)
    p.add_argument("--train-width", type=int, default=16)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--calibration", type=int, default=16)
    p.add_argument("--test", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--out", type=Path, default=Path("runs/bench/int8"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_s = None
    teacher_dir = args.teacher
    if teacher_dir is None:
        teacher_dir, train_s = train_teacher(
            args.data, args.train_width, args.train_steps, args.crop, args.lr, args.out / "teacher"
        )
    teacher = load_generator(teacher_dir)
    fp32 = export_onnx(teacher, args.out / "model.onnx")
    calib = calibration_inputs(teacher, args.data, count=args.calibration, size=args.size)
    test_ds = build_dataset(args.data, "paired", "test", TransformConfig.for_eval(args.size))
    step = max(1, len(test_ds) // args.test)
    tests = [test_ds[i]["A"][None] for i in range(0, len(test_ds), step)][: args.test]
    rows = []
    for name in args.settings:
        path = args.out / f"int8-{len(rows)}.onnx"
        start = time.perf_counter()
        quantize_onnx_int8(fp32, path, calib, **SETTINGS[name])
        score = int8_fidelity(fp32, path, tests, threads=args.threads)
        rows.append(
            {
                "setting": name,
                **score,
                "int8_bytes": path.stat().st_size,
                "seconds": time.perf_counter() - start,
            }
        )
        print(
            f"{name:40s} PSNR mean {score['psnr_mean']:6.2f} dB  min {score['psnr_min']:6.2f} dB", flush=True
        )
    import onnxruntime

    result = {
        "teacher": str(teacher_dir),
        "teacher_arch": f"resnet {teacher.options['num_blocks']} blocks, ngf {teacher.options['base_width']}, "
        f"norm {teacher.options['norm']} affine={teacher.options['norm_affine']}",
        "train_seconds": train_s,
        "data": str(args.data),
        "size": args.size,
        "calibration_images": len(calib),
        "test_images": len(tests),
        "fp32_bytes": fp32.stat().st_size,
        "rows": rows,
        "environment": {
            "device": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "command": " ".join(sys.argv),
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"fp32 {result['fp32_bytes']:,} bytes; results: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
