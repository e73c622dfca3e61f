"""``gancompress export``: a saved generator to ONNX fp32, ONNX int8 and TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

FORMATS = ("onnx", "int8", "torchscript")


def register_cli(sub: argparse._SubParsersAction) -> None:
    from .int8 import (
        CALIBRATION_METHODS,
        DEFAULT_KEEP_FP32,
        DEFAULT_METHOD,
        DEFAULT_PERCENTILE,
        FIDELITY_THRESHOLD_DB,
    )
    from .rewrite import DEFAULT_REWRITES, REWRITES

    p = sub.add_parser("export", help="export a saved generator to ONNX fp32 / int8 and TorchScript")
    p.add_argument("model", help="saved generator directory (or an official latest_net_G.pth)")
    p.add_argument("--out", required=True, help="output folder: model.onnx, model.int8.onnx, model.pt")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    p.add_argument(
        "--data", help="dataset root or builtin:fonts: real images calibrating int8 (required for int8)"
    )
    p.add_argument("--calibration", type=int, default=32, help="number of calibration images")
    p.add_argument("--calibration-size", type=int, help="calibration image side (default: the dataset's)")
    p.add_argument(
        "--calibration-method",
        default=DEFAULT_METHOD,
        choices=CALIBRATION_METHODS,
        help=f"default {DEFAULT_METHOD}",
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help="clip percentile of --calibration-method percentile",
    )
    p.add_argument(
        "--keep-fp32",
        default=",".join(DEFAULT_KEEP_FP32),
        help="layers left in fp32: first, last (conv), op types (Add) or ONNX node names, comma-separated; "
        "'' for none "
        f"(default {','.join(DEFAULT_KEEP_FP32) or 'none'})",
    )
    p.add_argument(
        "--fidelity-images",
        type=int,
        default=8,
        help="held-out images scoring int8 against fp32 (test split)",
    )
    p.add_argument(
        "--min-int8-psnr",
        type=float,
        default=FIDELITY_THRESHOLD_DB,
        help=f"fidelity threshold in dB, int8 against fp32 (default {FIDELITY_THRESHOLD_DB:g})",
    )
    p.add_argument(
        "--allow-lossy",
        action="store_true",
        help="keep an int8 graph below --min-int8-psnr against fp32 instead of failing",
    )
    p.add_argument(
        "--rewrites",
        default=",".join(DEFAULT_REWRITES),
        help=f"comma-separated deploy rewrites ({', '.join(REWRITES)}); '' for none",
    )
    p.add_argument("--opset", type=int, default=17)
    from .resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="import a .pth generator checkpoint into a saved generator directory (checked)"
    )
    p.add_argument("checkpoint", help="latest_net_G.pth (pytorch-CycleGAN-and-pix2pix, gan-compression, …)")
    p.add_argument("--out", required=True, help="saved generator directory to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_checkpoint_options(p)
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from .resolve import Provenance, import_checkpoint, overrides_from_args

    report = import_checkpoint(args.checkpoint, args.out, overrides_from_args(args))
    if args.json:
        print_json(report)
        return 0
    fields = {k: report[k] for k in Provenance.__dataclass_fields__}
    print("\n".join(Provenance(**fields).lines()))
    print(
        f"wrote {report['out']}; max |difference| to the checkpoint's own layers {report['max_abs_diff']:.2g}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from ..methods.commands import load_teacher, resolve_data
    from .int8 import calibration_inputs, check_int8_fidelity, quantize_onnx_int8
    from .onnx import export_onnx
    from .torchscript import export_torchscript

    rewrites = tuple(r for r in args.rewrites.split(",") if r)
    if "int8" in args.formats and not args.data:
        raise ConfigError("--formats int8 needs --data: int8 ranges are calibrated on real images")
    generator = load_teacher(args.model, args)
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
        keep = tuple(k.strip() for k in args.keep_fp32.split(",") if k.strip())
        int8 = quantize_onnx_int8(
            fp32,
            out / "model.int8.onnx",
            calib,
            method=args.calibration_method,
            percentile=args.percentile,
            keep_fp32=keep,
        )
        written["int8"] = str(int8)
        fidelity = check_int8_fidelity(
            generator,
            fp32,
            int8,
            data,
            count=args.fidelity_images,
            size=size,
            threshold=args.min_int8_psnr,
            allow_lossy=args.allow_lossy,
        )
    if "torchscript" in args.formats:
        written["torchscript"] = str(export_torchscript(generator, out / "model.pt", rewrites=rewrites))
    sizes = {k: Path(v).stat().st_size for k, v in written.items()}
    report = {"model": str(args.model), "rewrites": list(rewrites), "files": written, "bytes": sizes}
    if "int8" in args.formats:
        report["int8_vs_fp32"] = fidelity
    print_json(report)
    return 0
