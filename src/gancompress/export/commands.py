"""``gancompress export``: a saved generator to ONNX fp32, ONNX int8 and TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..utils.options import (
    add_list_option,
    data_spec,
    device_spec,
    existing_path,
    json_option,
    number,
    positive_int,
    threads_option,
)

FORMATS = ("onnx", "int8", "torchscript")
MAX_CALIBRATION = 1024
MAX_CALIBRATION_SIZE = 2048  # 32 RGB fp32 images at 2048 px are 1.6 GB
MIN_OPSET = 7  # torch's TorchScript-based ONNX exporter: opsets 7..20
MAX_OPSET = 20
MIN_INT8_OPSET = 13  # per-channel QuantizeLinear / DequantizeLinear


def register_cli(sub: argparse._SubParsersAction) -> None:
    from .rewrite import DEFAULT_REWRITES, REWRITES

    p = sub.add_parser("export", help="export a saved generator to ONNX fp32 / int8 and TorchScript")
    p.add_argument(
        "model", type=existing_path("any"), help="saved generator directory (or an official latest_net_G.pth)"
    )
    p.add_argument("--out", required=True, help="output folder: model.onnx, model.int8.onnx, model.pt")
    add_list_option(p, "--formats", allowed=FORMATS, default=FORMATS, help=f"formats ({', '.join(FORMATS)})")
    p.add_argument(
        "--data",
        type=data_spec,
        help="dataset root or builtin:fonts: real images calibrating int8 (required for int8)",
    )
    p.add_argument(
        "--calibration",
        type=positive_int(MAX_CALIBRATION),
        default=32,
        help=f"number of calibration images, at most {MAX_CALIBRATION} (default 32)",
    )
    p.add_argument(
        "--calibration-size",
        type=number(int, low=16, high=MAX_CALIBRATION_SIZE),
        help=f"calibration image side in [16, {MAX_CALIBRATION_SIZE}] (default: the dataset's)",
    )
    p.add_argument("--calibration-method", default="minmax", choices=("minmax", "percentile", "entropy"))
    add_list_option(
        p,
        "--rewrites",
        allowed=tuple(REWRITES),
        default=tuple(DEFAULT_REWRITES),
        help=f"deploy rewrites ({', '.join(REWRITES)})",
    )
    p.add_argument(
        "--opset",
        type=number(int, low=MIN_OPSET, high=MAX_OPSET),
        default=17,
        help=f"ONNX opset in [{MIN_OPSET}, {MAX_OPSET}] (int8: {MIN_INT8_OPSET} or newer; default 17)",
    )
    p.add_argument(
        "--device",
        type=device_spec,
        default="auto",
        help="auto (the default) or cpu: tracing and calibration run on the CPU; the files run anywhere",
    )
    threads_option(p)
    json_option(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..data.builtin import resolve_data_spec as resolve_data
    from ..methods.commands import load_teacher
    from .int8 import calibration_inputs, quantize_onnx_int8
    from .onnx import export_onnx
    from .torchscript import export_torchscript

    rewrites = tuple(args.rewrites)
    if not args.formats:
        raise ConfigError(f"--formats: give at least one of {', '.join(FORMATS)}")
    if args.device not in ("auto", "cpu"):
        raise ConfigError(f"--device {args.device}: export traces and calibrates on the CPU; use auto or cpu")
    if "int8" in args.formats and not args.data:
        raise ConfigError("--formats int8 needs --data: int8 ranges are calibrated on real images")
    if "int8" in args.formats and args.opset < MIN_INT8_OPSET:
        raise ConfigError(f"--opset {args.opset}: int8 needs opset {MIN_INT8_OPSET} or newer")
    generator = load_teacher(args.model)
    out = Path(args.out)
    written: dict[str, str] = {}
    fp32 = out / "model.onnx"
    if "onnx" in args.formats or "int8" in args.formats:
        written["onnx"] = str(export_onnx(generator, fp32, rewrites=rewrites, opset=args.opset))
    if "int8" in args.formats:
        data = resolve_data(args.data)
        size = args.calibration_size
        if size is None:
            from ..data import read_metadata

            size = int((read_metadata(data) or {}).get("size") or 256)
        calib = calibration_inputs(generator, data, count=args.calibration, size=size)
        written["int8"] = str(
            quantize_onnx_int8(fp32, out / "model.int8.onnx", calib, method=args.calibration_method)
        )
    if "torchscript" in args.formats:
        written["torchscript"] = str(export_torchscript(generator, out / "model.pt", rewrites=rewrites))
    if args.json:
        print_json({"model": str(args.model), "rewrites": list(rewrites), "files": written})
        return 0
    print(f"exported {args.model} (rewrites: {', '.join(rewrites) or 'none'})")
    for fmt, path in written.items():
        print(f"  {fmt:12s} {path}")
    return 0
