"""Where the time goes in OpenVINO: per-layer times of the teacher or the 22×-fewer-MACs subnet.

Exports the network with OpenVINO's rewrites (``RUNTIME_REWRITES["openvino"]``, or ``--rewrites``),
compiles it for one thread and a static 1×3×S×S input, runs it ``--runs`` times with OpenVINO's
per-layer counters and prints, per executed layer type and kernel, the sum over layers of each
layer's fastest run (the least disturbed by other processes on a shared machine), then the slowest
layers. ``--int8`` profiles the QDQ graph calibrated on real glyph images.

    python bench/openvino_profile.py --model subnet
    python bench/openvino_profile.py --model teacher --runs 3 --int8
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import torch

from gancompress.bench.latency import environment_line
from gancompress.export.onnx import export_onnx
from gancompress.export.openvino import openvino_model
from gancompress.export.rewrite import RUNTIME_REWRITES
from gancompress.models import create_generator

STUDENT_ARCH = "16_16_32_16_32_32_16_16"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("teacher", "subnet"), default="subnet")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--int8", action="store_true", help="profile the int8 QDQ graph")
    p.add_argument("--rewrites", default=None, help="comma-separated; default: OpenVINO's own")
    p.add_argument("--top", type=int, default=12, help="slowest layers to list")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    if args.model == "teacher":
        g = create_generator("resnet").eval()
    else:
        g = create_generator("resnet", arch=STUDENT_ARCH, separable=True).eval()
    rewrites = (
        RUNTIME_REWRITES["openvino"]
        if args.rewrites is None
        else tuple(r for r in args.rewrites.split(",") if r)
    )
    shape = [1, 3, args.size, args.size]
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(g, Path(tmp) / "g.onnx", rewrites=rewrites)
        if args.int8:
            sys.path.insert(0, str(Path(__file__).parent))
            from latency_table import calibration

            from gancompress.export.int8 import quantize_onnx_int8

            path = quantize_onnx_int8(path, Path(tmp) / "g.int8.onnx", calibration(args.size, 16))
        compiled = openvino_model(path, threads=args.threads, shapes=[shape], profile=True)
    request = compiled.create_infer_request()
    x = (torch.rand(shape) * 2 - 1).numpy()
    for _ in range(2):  # warm-up
        request.infer({0: x})
    best: dict[tuple[str, str, str], float] = {}
    for _ in range(args.runs):
        request.infer({0: x})
        for info in request.profiling_info:
            key = (info.node_name, info.node_type, info.exec_type)
            ms = info.real_time.total_seconds() * 1000.0
            best[key] = min(best.get(key, ms), ms)
    by_kind: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for (_, node_type, exec_type), ms in best.items():
        by_kind[(node_type, exec_type)] += ms
        count[(node_type, exec_type)] += 1
    total = sum(best.values())
    print(environment_line(args.threads))
    print(
        f"{args.model} ({'int8' if args.int8 else 'fp32'}), input {'×'.join(map(str, shape))}, "
        f"rewrites {','.join(rewrites) or 'none'}; sum of per-layer fastest runs over {args.runs}: "
        f"{total:.2f} ms"
    )
    print("| layer type | kernel | layers | ms | share |\n|---|---|---|---|---|")
    for (node_type, exec_type), ms in by_kind.most_common():
        if ms >= 0.005:
            print(
                f"| {node_type} | {exec_type} | {count[(node_type, exec_type)]} | {ms:.2f} | {ms / total:.0%} |"
            )
    print(f"\nslowest {args.top} layers:")
    for (name, node_type, exec_type), ms in sorted(best.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {ms:6.2f} ms  {node_type:24s} {exec_type:26s} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
