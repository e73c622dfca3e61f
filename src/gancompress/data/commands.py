"""The ``data`` subcommands: ``data list`` and ``data prepare NAME --out DIR``."""

from __future__ import annotations

import argparse
import inspect
import math
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..utils.options import json_option


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets: list the built-in ones, build one into a folder")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = data_sub.add_parser("list", help="the datasets 'data prepare' can build, and what each needs")
    json_option(q)
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
    json_option(q)
    q.set_defaults(func=cmd_prepare)


def builder_options(name: str) -> dict[str, Any]:
    """The keyword options of dataset ``name``'s builder with their defaults."""
    from .prepare import PREPARERS, builder_function

    if name not in PREPARERS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(PREPARERS)}")
    params = inspect.signature(builder_function(name)).parameters.values()
    return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}


# builder options with a range, by name (the type comes from the option's default)
POSITIVE_OPTIONS = {"size", "max_chars", "tile", "stride"}
FRACTION_OPTIONS = {"test_fraction"}  # open (0, 1)
UNIT_OPTIONS = {"min_land"}  # [0, 1]
NON_NEGATIVE_OPTIONS = {"seed"}


def check_option(name: str, key: str, value: Any, default: Any) -> Any:
    """``value`` of builder option ``key``, checked against its default's type and its range."""
    where = f"--set {key}={value!r} (dataset {name})"
    if value is None:
        if default is None:
            return None
        raise ConfigError(f"{where}: a value is needed (default {default!r})")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    numeric = isinstance(default, int | float) or key in POSITIVE_OPTIONS | FRACTION_OPTIONS | UNIT_OPTIONS
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number")
        if (isinstance(default, int) or key in POSITIVE_OPTIONS) and value != int(value):
            raise ConfigError(f"{where}: expected a whole number")
        if key in POSITIVE_OPTIONS and value < 1:
            raise ConfigError(f"{where}: must be at least 1")
        if key in NON_NEGATIVE_OPTIONS and value < 0:
            raise ConfigError(f"{where}: must be at least 0")
        if key in FRACTION_OPTIONS and not 0 < value < 1:
            raise ConfigError(f"{where}: must be in (0, 1)")
        if key in UNIT_OPTIONS and not 0 <= value <= 1:
            raise ConfigError(f"{where}: must be in [0, 1]")
        return value
    if isinstance(default, str | Path) and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a text value")
    if isinstance(default, tuple | list) and not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, e.g. [1, 2]")
    return value


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
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: cannot parse {raw!r}: {exc}") from None
        options[key] = check_option(name, key, value, known[key])
    return options


def cmd_list(args: argparse.Namespace) -> int:
    from ..cli import print_json
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
        print_json(rows)
        return 0
    for name, row in rows.items():
        print(f"{name:16s} {row['kind']:9s} {row['description']}")
        print(f"{'':26s} needs:   {row['needs']}")
        opts = ", ".join(f"{k}={v!r}" for k, v in row["options"].items())
        print(f"{'':26s} options: {opts}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..cli import print_json
    from .metadata import read_metadata
    from .prepare import prepare_dataset

    options = parse_options(args.name, args.options)
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a file; give a new or empty folder")
    start = time.perf_counter()
    out = prepare_dataset(args.name, args.out, **options)
    info = read_metadata(out) or {}
    if args.json:
        print_json({"path": str(out), **info})
        return 0
    counts = ", ".join(f"{k} {v}" for k, v in info.get("counts", {}).items())
    print(
        f"{args.name}: {out} ({info.get('kind')}, {info.get('size')} px; {counts}) in {time.perf_counter() - start:.1f} s"
    )
    return 0
