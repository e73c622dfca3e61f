"""``gancompress export``: a saved generator to ONNX fp32, ONNX int8, TorchScript and mobile bundles."""

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
#: mobile bundles (model + deploy.json + run_example.py in OUT/<format>/), asked for by name only
MOBILE_FORMATS = ("executorch", "executorch-int8", "ncnn", "coreml")  # == mobile.MOBILE_FORMATS


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
    p.add_argument(
        "model", type=existing_path("any"), help="saved generator directory (or an official latest_net_G.pth)"
    )
    p.add_argument("--out", required=True, help="output folder: model.onnx, model.int8.onnx, model.pt")
    add_list_option(
        p,
        "--formats",
        "--format",
        allowed=FORMATS + MOBILE_FORMATS,
        default=FORMATS,
        help=f"formats ({', '.join(FORMATS)}; mobile bundles, optional extras: {', '.join(MOBILE_FORMATS)})",
    )
    p.add_argument(
        "--mobile-size",
        type=positive_int(MAX_CALIBRATION_SIZE),
        nargs=2,
        metavar=("H", "W"),
        help="fixed input size of the mobile bundles (default: the calibration size, or 256 256)",
    )
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
        type=number(
            int,
            low=16,
            high=MAX_CALIBRATION_SIZE,
            why_high="a larger side needs more memory than calibration should take",
        ),
        help=f"calibration image side in [16, {MAX_CALIBRATION_SIZE}] (default: the dataset's)",
    )
    p.add_argument(
        "--calibration-method",
        default=DEFAULT_METHOD,
        choices=CALIBRATION_METHODS,
        help=f"default {DEFAULT_METHOD}",
    )
    p.add_argument(
        "--percentile",
        type=number(float, low=50.0, high=100.0),
        default=DEFAULT_PERCENTILE,
        help="clip percentile of --calibration-method percentile",
    )
    add_list_option(
        p,
        "--keep-fp32",
        default=tuple(DEFAULT_KEEP_FP32),
        help="layers left in fp32: first, last (conv), op types (Add) or ONNX node names",
    )
    p.add_argument(
        "--fidelity-images",
        type=positive_int(MAX_CALIBRATION),
        default=8,
        help="held-out images scoring int8 against fp32 (test split)",
    )
    p.add_argument(
        "--min-int8-psnr",
        type=number(float, low=0.0, high=1000.0),
        default=FIDELITY_THRESHOLD_DB,
        help=f"fidelity threshold in dB, int8 against fp32 (default {FIDELITY_THRESHOLD_DB:g})",
    )
    p.add_argument(
        "--allow-lossy",
        action="store_true",
        help="keep an int8 graph below --min-int8-psnr against fp32 instead of failing",
    )
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
    from .resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="import a .pth generator checkpoint into a saved generator directory (checked)"
    )
    p.add_argument(
        "checkpoint",
        type=existing_path("any"),
        help="latest_net_G.pth (pytorch-CycleGAN-and-pix2pix, gan-compression, …)",
    )
    p.add_argument("--out", required=True, help="saved generator directory to write")
    json_option(p)
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
    from ..data.builtin import resolve_data_spec as resolve_data
    from ..methods.commands import load_teacher
    from .int8 import calibration_inputs, check_int8_fidelity, quantize_onnx_int8
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
        keep = tuple(args.keep_fp32)
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
    mobile = [f for f in args.formats if f in MOBILE_FORMATS]
    if mobile:
        written.update(_export_mobile(args, generator, out, mobile))
    sizes = {k: Path(v).stat().st_size for k, v in written.items()}
    report = {"model": str(args.model), "rewrites": list(rewrites), "files": written, "bytes": sizes}
    if "int8" in args.formats:
        report["int8_vs_fp32"] = fidelity
    if args.json:
        print_json(report)
        return 0
    print(f"exported {args.model} (rewrites: {', '.join(rewrites) or 'none'})")
    for fmt, path in written.items():
        print(f"  {fmt:12s} {path} ({sizes[fmt]:,} bytes)")
    return 0


def _export_mobile(args: argparse.Namespace, generator, out: Path, formats: list[str]) -> dict[str, str]:
    """One bundle per mobile format, verified on real images when ``--data`` is given."""
    import sys

    from .mobile import bundle_summary, export_bundle

    size = tuple(args.mobile_size) if args.mobile_size else (args.calibration_size or 256,) * 2
    images = None
    if args.data:
        from ..data.builtin import resolve_data_spec as resolve_data
        from .int8 import calibration_inputs

        if size[0] != size[1]:
            raise ConfigError("--mobile-size: real calibration images are square; give H equal to W")
        images = calibration_inputs(generator, resolve_data(args.data), count=args.calibration, size=size[0])
    written = {}
    for fmt in formats:
        meta = export_bundle(generator, out / fmt, fmt, size=size, images=images)
        print(bundle_summary(meta), file=sys.stderr)
        _gate_mobile_int8(args, out / fmt, fmt, meta)
        written[fmt] = str(out / fmt / meta["model"])
    return written


def _gate_mobile_int8(args: argparse.Namespace, folder: Path, fmt: str, meta: dict) -> None:
    """An int8 bundle is held to the same fidelity threshold as the ONNX int8 graph (worst image
    against the fp32 PyTorch output on real images): below it the bundle folder is renamed
    ``<format>.lossy`` and the export fails, unless ``--allow-lossy``."""
    import os
    import sys

    from .int8 import Int8QualityError

    check = meta.get("verification")
    if meta.get("dtype") != "int8":
        return
    if not isinstance(check, dict):
        print(f"{fmt}: int8 bundle not checked on real images (give --data to check it)", file=sys.stderr)
        return
    worst = float(check["psnr_db_min"])
    if worst >= args.min_int8_psnr or args.allow_lossy:
        return
    lossy = folder.with_name(folder.name + ".lossy")
    if lossy.exists():
        import shutil

        shutil.rmtree(lossy)
    os.replace(folder, lossy)
    raise Int8QualityError(
        f"{folder}: the {fmt} bundle's output is {worst:.2f} dB PSNR from the fp32 model on its worst real "
        f"image, below {args.min_int8_psnr:g} dB; kept as {lossy}. Pass --allow-lossy to accept it"
    )
