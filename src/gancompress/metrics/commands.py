"""The ``evaluate`` subcommand: score a saved generator on a dataset folder."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from ..errors import ConfigError


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="FID/KID (per extractor), PSNR/SSIM/L1 and content accuracy of a saved generator"
    )
    p.add_argument(
        "generator",
        help="a saved generator directory (config.json + model.safetensors), a .pth checkpoint, or 'identity': the no-op "
        "baseline that outputs its input (what the metrics say when nothing is translated)",
    )
    p.add_argument(
        "--data",
        required=True,
        help="dataset folder (e.g. from 'gancompress data prepare'), or builtin:fonts / builtin:fonts-unpaired",
    )
    p.add_argument(
        "--kind", choices=("paired", "unpaired", "semantic"), help="layout (default: the dataset's)"
    )
    p.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"))
    p.add_argument("--split", default="test")
    p.add_argument(
        "--extractors",
        default="domain,vgg",
        help="comma-separated: inception, vgg, vgg-hed, vgg-craft, domain, domain:NAME, segmenter:NAME "
        "(default domain,vgg)",
    )
    p.add_argument(
        "--segmenter",
        default="auto",
        help="semantic data: a shipped segmenter name or its .json path for mIoU (default: the dataset's own)",
    )
    p.add_argument(
        "--vgg-resize", type=int, help="resize images to this size for VGG (default: their own size)"
    )
    p.add_argument("--inception-weights", help="path to pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int)
    p.add_argument("--size", type=int, help="image size (default: the dataset's, else 256)")
    p.add_argument("--no-cache", action="store_true", help="recompute real statistics")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    from ..export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_evaluate)


class IdentityGenerator(nn.Module):
    """The no-op baseline: returns its input image (RGB inputs only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ConfigError(
                f"the identity baseline needs RGB inputs; this dataset's inputs have {x.shape[1]} channels"
            )
        return x


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..data import read_metadata
    from ..export.resolve import load_generator_arg
    from .evaluate import evaluate_generator

    if args.data.startswith("builtin:"):
        from ..data import ensure_builtin_dataset

        name, _, variant = args.data.split(":", 1)[1].partition("-")
        args.data = str(ensure_builtin_dataset(name, paired=variant != "unpaired"))
    kind = args.kind or (read_metadata(args.data) or {}).get("kind") or "paired"
    generator = (
        IdentityGenerator() if args.generator == "identity" else load_generator_arg(args.generator, args)
    )
    result = evaluate_generator(
        generator,
        args.data,
        kind=kind,
        direction=args.direction,
        extractors=tuple(s.strip() for s in args.extractors.split(",") if s.strip()),
        batch_size=args.batch_size,
        device=args.device,
        max_images=args.max_images,
        split=args.split,
        image_size=args.size,
        inception_weights=args.inception_weights,
        vgg_resize=args.vgg_resize,
        segmenter=args.segmenter,
        cache=not args.no_cache,
    )
    result["generator"] = str(args.generator)
    if args.json:
        from ..cli import print_json

        print_json(result)
        return 0
    print(f"generator  {args.generator}")
    print(
        f"data       {result['data']} ({result['dataset'] or 'folder'}, {kind}, {result['split']}, {result['num_images']} images at {result['image_size']} px)"
    )
    for key, value in result.get("paired", {}).items():
        print(f"{key:10s} {value:.4f}")
    if "segmentation" in result:
        seg = result["segmentation"]
        print(f"{'mIoU':10s} {seg['miou']:.4f}  ({seg['segmenter']})")
    for _spec, entry in result["extractors"].items():
        spread = "" if entry["kid_std"] is None else f"±{entry['kid_std']:.4g}"
        line = f"FID {entry['fid']:.4g}  KID {entry['kid']:.4g}{spread}"
        if "content_accuracy" in entry:
            line += f"  content accuracy {entry['content_accuracy']:.3f}"
        print(f"[{entry['extractor']}] {line}")
    for spec, reason in result["skipped"].items():
        print(f"[{spec}] skipped: {reason}")
    if not any(e["comparable_with_published_fid"] for e in result["extractors"].values()):
        print(
            "note: none of these FIDs used the FID Inception-v3; they are not comparable with published FIDs"
        )
    return 0
