"""``gancompress export``: a saved generator to ONNX fp32, ONNX int8 and TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

FORMATS = ("onnx", "int8", "torchscript")


def register_cli(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--calibration-method", default="minmax", choices=("minmax", "percentile", "entropy"))
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
    from .int8 import calibration_inputs, quantize_onnx_int8
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
        written["int8"] = str(
            quantize_onnx_int8(fp32, out / "model.int8.onnx", calib, method=args.calibration_method)
        )
    if "torchscript" in args.formats:
        written["torchscript"] = str(export_torchscript(generator, out / "model.pt", rewrites=rewrites))
    print_json({"model": str(args.model), "rewrites": list(rewrites), "files": written})
    return 0
