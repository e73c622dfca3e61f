"""The ``data`` subcommands: ``data list`` and ``data prepare NAME --out DIR``."""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets: list the built-in ones, build one into a folder")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = data_sub.add_parser("list", help="the datasets 'data prepare' can build, and what each needs")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=cmd_list)

    q = data_sub.add_parser(
        "prepare",
        help="build a dataset (fonts, fonts-unlabelled, cjk-fonts, maps, labels2sat, fashion) into the standard layout",
        description="Build a dataset into DIR in the standard layout, with gancompress_dataset.json. "
        "Builder options are passed as --set key=value (e.g. --set size=128 --set max_chars=4000); "
        "'gancompress data list' shows each builder's options.",
    )
    q.add_argument("name", help="dataset name (see 'gancompress data list')")
    q.add_argument("--out", required=True, type=Path, help="output folder (must not exist, or be empty)")
    q.add_argument(
        "--set", dest="options", action="append", default=[], metavar="KEY=VALUE", help="a builder option"
    )
    q.add_argument("--json", action="store_true", help="print the dataset's metadata as JSON")
    q.set_defaults(func=cmd_prepare)


def builder_options(name: str) -> dict[str, Any]:
    """The keyword options of dataset ``name``'s builder with their defaults."""
    from .prepare import PREPARERS, builder_function

    if name not in PREPARERS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(PREPARERS)}")
    params = inspect.signature(builder_function(name)).parameters.values()
    return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}


def parse_options(name: str, pairs: list[str]) -> dict[str, Any]:
    """``["size=128", "band=[0, 90]"]`` → ``{"size": 128, "band": [0, 90]}`` (YAML values), checked against the builder."""
    known = builder_options(name)
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        if key not in known:
            raise ConfigError(
                f"--set {key}: dataset {name!r} has no option {key!r}; options: {', '.join(known)}"
            )
        try:
            options[key] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: cannot parse {raw!r}: {exc}") from None
    return options


def cmd_list(args: argparse.Namespace) -> int:
    from .prepare import PREPARERS

    rows = {
        name: {
            "kind": p.kind,
            "description": p.description,
            "needs": p.requires,
            "licence": p.licence,
            "options": {k: v for k, v in builder_options(name).items()},
        }
        for name, p in PREPARERS.items()
    }
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for name, row in rows.items():
        print(f"{name:16s} {row['kind']:9s} {row['description']}")
        print(f"{'':26s} needs:   {row['needs']}")
        opts = ", ".join(f"{k}={v!r}" for k, v in row["options"].items())
        print(f"{'':26s} options: {opts}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .metadata import read_metadata
    from .prepare import prepare_dataset

    options = parse_options(args.name, args.options)
    start = time.perf_counter()
    out = prepare_dataset(args.name, args.out, **options)
    info = read_metadata(out) or {}
    if args.json:
        print(json.dumps({"path": str(out), **info}, indent=2, ensure_ascii=False, default=str))
        return 0
    counts = ", ".join(f"{k} {v}" for k, v in info.get("counts", {}).items())
    print(
        f"{args.name}: {out} ({info.get('kind')}, {info.get('size')} px; {counts}) in {time.perf_counter() - start:.1f} s"
    )
    return 0
