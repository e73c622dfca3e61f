"""Core subcommands: ``list`` and ``profile``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .cli import print_json
from .errors import ConfigError
from .utils.options import META_SIZE_HELP, META_SIZE_OPTION, json_option, positive_int


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list generator families, discriminators and compression methods")
    json_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("profile", help="parameters and MACs (paper and true conventions) of a generator")
    p.add_argument(
        "target",
        help="a family name (resnet, unet, spade, munit), a saved generator directory or a .pth checkpoint",
    )
    p.add_argument(
        "--separable",
        action="store_true",
        help="GAN Compression's mobile (separable) family: resnet, spade, munit",
    )
    p.add_argument("--arch", help="architecture string, e.g. 16_16_32_16_32_32_16_16")
    p.add_argument("--preset", help="spade: cityscapes | coco | ade20k")
    p.add_argument(
        "--layout",
        choices=("thirds", "legacy"),
        help="resnet block widths: thirds (sub_mobile_resnet_9blocks, default) or legacy "
        "(legacy_sub_mobile_resnet_9blocks: only blocks 1, 4, 7 narrower than the trunk)",
    )
    p.add_argument("--base-width", type=positive_int(4096), help="ngf (default 64)")
    p.add_argument("--size", **META_SIZE_OPTION, help=f"{META_SIZE_HELP} (default: the family's)")
    p.add_argument("--layers", action="store_true", help="also print the per-layer breakdown")
    json_option(p)
    from .export.resolve import add_checkpoint_options

    add_checkpoint_options(p)
    p.set_defaults(func=cmd_profile)


def cmd_list(args: argparse.Namespace) -> int:
    from .methods import list_methods, method_status
    from .models import list_discriminators, list_generators

    info = {
        "generators": list_generators(),
        "discriminators": list_discriminators(),
        "methods": {name: method_status(name) for name in list_methods()},
    }
    if args.json:
        print_json(info)
        return 0
    print("generator families: " + ", ".join(info["generators"]))
    print("discriminators:     " + ", ".join(info["discriminators"]))
    print("compression methods:")
    for name, status in info["methods"].items():
        print(f"  {name:24s} {status}")
    return 0


def _fmt(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def cmd_profile(args: argparse.Namespace) -> int:
    from .metrics.profile import profile_generator
    from .models import GENERATORS, create_generator

    target = Path(args.target)
    if target.is_dir() or target.is_file():
        if args.arch or args.separable or args.preset or args.base_width or args.layout:
            raise ConfigError(
                "--arch/--separable/--preset/--base-width/--layout apply to a family name, not a saved model"
            )
        from .export.resolve import load_generator_arg

        generator = load_generator_arg(target, args)
        name = str(target)
    else:
        if args.target not in GENERATORS:
            raise ConfigError(
                f"{args.target!r} is neither a saved generator directory nor a family; "
                f"families: {', '.join(GENERATORS.list())}"
            )
        options = {}
        if args.separable:
            if args.target not in ("resnet", "spade", "munit"):
                raise ConfigError("--separable applies to the resnet, spade and munit families only")
            options["separable"] = True
        if args.preset:
            if args.target != "spade":
                raise ConfigError("--preset applies to the spade family only")
            options["preset"] = args.preset
        if args.layout:
            if args.target != "resnet":
                raise ConfigError("--layout applies to the resnet family only")
            options["layout"] = args.layout
        if args.base_width:
            options["base_width"] = args.base_width
        with torch.device("meta"):  # shapes only: full-size counts without computing anything
            generator = create_generator(args.target, arch=args.arch, **options)
        name = args.target
    size = tuple(args.size) if args.size else None
    result = profile_generator(generator, size)
    out = {
        "model": name,
        "family": generator.family,
        "arch": str(generator.arch),
        **result.to_dict(args.layers),
    }
    if args.json:
        print_json(out)
        return 0
    print(f"model        {name} ({generator.family}, arch {generator.arch})")
    print(f"input        {'x'.join(str(s) for s in result.input_shape)}")
    print(f"params       {result.params:,} ({_fmt(result.params)})")
    print(
        f"MACs paper   {result.macs_paper:,} ({_fmt(result.macs_paper)})  torchprofile convention of the papers"
    )
    print(f"MACs true    {result.macs_true:,} ({_fmt(result.macs_true)})  real multiply-accumulates")
    if args.layers:
        print()
        print(f"{'layer':40s} {'kind':26s} {'params':>10s} {'MACs paper':>12s} {'MACs true':>12s}")
        for s in result.layers:
            print(
                f"{s.name:40s} {s.kind:26s} {s.params:>10,} {_fmt(s.macs_paper):>12s} {_fmt(s.macs_true):>12s}"
            )
    return 0
