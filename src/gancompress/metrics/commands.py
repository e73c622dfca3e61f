"""The ``evaluate`` subcommand: score a saved generator on a dataset folder."""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from ..errors import ConfigError
from ..utils.options import (
    SIZE_HELP,
    SIZE_OPTION,
    add_list_option,
    data_spec,
    device_option,
    existing_path,
    json_option,
    number,
    positive_int,
    square_side,
    threads_option,
)


def known_extractor(spec: str) -> bool:
    """Whether ``spec`` names an extractor (see :mod:`gancompress.metrics.extractors`)."""
    from .extractors import EXTRACTOR_NAMES

    prefix, sep, rest = spec.partition(":")
    if sep:
        return f"{prefix}:NAME" in EXTRACTOR_NAMES and bool(rest)
    return spec in EXTRACTOR_NAMES


known_extractor.known = "inception, vgg, vgg-hed, vgg-craft, domain, domain:NAME, segmenter:NAME"  # type: ignore[attr-defined]


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="FID/KID (per extractor), PSNR/SSIM/L1 and content accuracy of a saved generator"
    )
    p.add_argument(
        "generator",
        type=generator_spec,
        help="a saved generator directory (config.json + model.safetensors), a .pth checkpoint, or 'identity': the no-op "
        "baseline that outputs its input (what the metrics say when nothing is translated)",
    )
    p.add_argument(
        "--data",
        required=True,
        type=data_spec,
        help="dataset folder (e.g. from 'gancompress data prepare'), or builtin:fonts / builtin:fonts-unpaired",
    )
    p.add_argument(
        "--kind", choices=("paired", "unpaired", "semantic"), help="layout (default: the dataset's)"
    )
    p.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"))
    p.add_argument("--split", default="test", help="the split to generate and score (default test)")
    add_list_option(
        p,
        "--extractors",
        allowed=known_extractor,
        default=("domain", "vgg"),
        help="FID/KID feature extractors: inception, vgg, vgg-hed, vgg-craft, domain, domain:NAME, "
        "segmenter:NAME",
    )
    p.add_argument(
        "--segmenter",
        default="auto",
        help="semantic data: a shipped segmenter name or its .json path for mIoU (default: the dataset's own)",
    )
    p.add_argument(
        "--vgg-resize",
        type=number(int, low=16, high=2048),
        help="resize images to this size for VGG, in [16, 2048] (default: their own size)",
    )
    p.add_argument(
        "--inception-weights", type=existing_path("file"), help="path to pt_inception-2015-12-05-6726825d.pth"
    )
    p.add_argument("--batch-size", type=positive_int(4096), default=16, help="images per batch (default 16)")
    device_option(p)
    threads_option(p)
    p.add_argument("--max-images", type=positive_int(), help="score at most this many images")
    p.add_argument("--size", **SIZE_OPTION, help=f"{SIZE_HELP}; square (default: the dataset's, else 256)")
    p.add_argument("--no-cache", action="store_true", help="recompute real statistics")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress on stderr")
    json_option(p)
    from ..export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_evaluate)


def generator_spec(text: str) -> str:
    """An argparse type: ``identity``, or a saved generator directory or checkpoint file that exists."""
    return text if text == "identity" else existing_path("any")(text)


generator_spec.__name__ = "generator"


class ProgressGenerator(nn.Module):
    """Counts the images a generator makes on a progress bar (stderr), so a long evaluation shows life."""

    def __init__(self, generator: nn.Module, bar) -> None:
        super().__init__()
        self.generator = generator
        self.bar = bar
        self.source_path = getattr(generator, "source_path", None)  # errors name the model, not this wrapper

    def forward(self, *inputs: torch.Tensor):
        out = self.generator(*inputs)
        self.bar.update(int(inputs[0].shape[0]))
        return out


class IdentityGenerator(nn.Module):
    """The no-op baseline: returns its input image (RGB inputs only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ConfigError(
                f"the identity baseline needs RGB inputs; this dataset's inputs have {x.shape[1]} channels"
            )
        return x


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data import read_metadata
    from ..data.builtin import resolve_data_spec
    from ..export.resolve import load_generator_arg
    from .evaluate import evaluate_generator

    size = square_side(args.size)
    args.data = str(resolve_data_spec(args.data))
    kind = args.kind or (read_metadata(args.data) or {}).get("kind") or "paired"
    if args.segmenter != "auto" and kind != "semantic":
        raise ConfigError(
            f"--segmenter {args.segmenter}: mIoU is measured on semantic data; this data is {kind}"
        )
    generator = (
        IdentityGenerator() if args.generator == "identity" else load_generator_arg(args.generator, args)
    )
    bar = tqdm(
        desc=f"evaluate: generate {args.split}",
        unit="img",
        disable=not args.progress,
        file=sys.stderr,
        mininterval=1.0,
        dynamic_ncols=True,
    )
    if args.progress:
        steps = f", then FID/KID features with {', '.join(args.extractors)}" if args.extractors else ""
        print(f"evaluate: generating the {args.split} split{steps}", file=sys.stderr, flush=True)
    try:
        result = evaluate_generator(
            ProgressGenerator(generator, bar),
            args.data,
            kind=kind,
            direction=args.direction,
            extractors=tuple(args.extractors),
            batch_size=args.batch_size,
            device=args.device,
            max_images=args.max_images,
            split=args.split,
            image_size=size,
            inception_weights=args.inception_weights,
            vgg_resize=args.vgg_resize,
            segmenter=args.segmenter,
            cache=not args.no_cache,
        )
    finally:
        bar.close()
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
