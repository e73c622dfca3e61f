"""``gancompress export``: a saved generator to ONNX fp32, ONNX int8, TorchScript and mobile bundles."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

FORMATS = ("onnx", "int8", "torchscript")
#: mobile bundles (model + deploy.json + run_example.py in OUT/<format>/), asked for by name only
MOBILE_FORMATS = ("executorch", "executorch-int8", "ncnn", "coreml")  # == mobile.MOBILE_FORMATS


def register_cli(sub: argparse._SubParsersAction) -> None:
    from .rewrite import DEFAULT_REWRITES, REWRITES

    p = sub.add_parser("export", help="export a saved generator to ONNX fp32 / int8 and TorchScript")
    p.add_argument("model", help="saved generator directory (or an official latest_net_G.pth)")
    p.add_argument("--out", required=True, help="output folder: model.onnx, model.int8.onnx, model.pt")
    p.add_argument(
        "--formats",
        "--format",
        nargs="+",
        choices=FORMATS + MOBILE_FORMATS,
        default=list(FORMATS),
        help=f"default: {' '.join(FORMATS)}; mobile bundles: {' '.join(MOBILE_FORMATS)} (optional extras)",
    )
    p.add_argument(
        "--mobile-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="fixed input size of the mobile bundles (default: the calibration size, or 256 256)",
    )
    p.add_argument(
        "--data", help="dataset root or builtin:fonts: real images calibrating int8 (required for int8)"
    )
    p.add_argument("--calibration", type=int, default=32, help="number of calibration images")
    p.add_argument("--calibration-size", type=int, help="calibration image side (default: the dataset's)")
    p.add_argument("--calibration-method", default="minmax", choices=("minmax", "percentile", "entropy"))
    p.add_argument(
        "--rewrites",
        default=",".join(DEFAULT_REWRITES),
        help=f"comma-separated deploy rewrites ({', '.join(REWRITES)}); '' for none",
    )
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..methods.commands import load_teacher, resolve_data
    from .int8 import calibration_inputs, quantize_onnx_int8
    from .onnx import export_onnx
    from .torchscript import export_torchscript

    rewrites = tuple(r for r in args.rewrites.split(",") if r)
    if "int8" in args.formats and not args.data:
        raise ConfigError("--formats int8 needs --data: int8 ranges are calibrated on real images")
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
    mobile = [f for f in args.formats if f in MOBILE_FORMATS]
    if mobile:
        written.update(_export_mobile(args, generator, out, mobile))
    print_json({"model": str(args.model), "rewrites": list(rewrites), "files": written})
    return 0


def _export_mobile(args: argparse.Namespace, generator, out: Path, formats: list[str]) -> dict[str, str]:
    """One bundle per mobile format, verified on real images when ``--data`` is given."""
    import sys

    from .mobile import bundle_summary, export_bundle

    size = tuple(args.mobile_size) if args.mobile_size else (args.calibration_size or 256,) * 2
    images = None
    if args.data:
        from ..methods.commands import resolve_data
        from .int8 import calibration_inputs

        if size[0] != size[1]:
            raise ConfigError("--mobile-size: real calibration images are square; give H equal to W")
        images = calibration_inputs(generator, resolve_data(args.data), count=args.calibration, size=size[0])
    written = {}
    for fmt in formats:
        meta = export_bundle(generator, out / fmt, fmt, size=size, images=images)
        print(bundle_summary(meta), file=sys.stderr)
        written[fmt] = str(out / fmt / meta["model"])
    return written
