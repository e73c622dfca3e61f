"""The ``gancompress`` command line: thin subcommands over the public API.

Each area of the library contributes its subcommands through a ``register_cli(subparsers)`` function
in one module listed in ``COMMAND_MODULES``; every subcommand sets ``func`` (args → exit code).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Sequence

from . import __version__
from .errors import GanCompressError

COMMAND_MODULES = (
    "gancompress.commands",
    "gancompress.methods.commands",
    "gancompress.data.commands",
    "gancompress.metrics.commands",
    "gancompress.training.commands",
    "gancompress.bench.commands",
    "gancompress.export.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gancompress",
        description="Compress conditional GAN generators and measure them honestly.",
    )
    parser.add_argument("--version", action="version", version=f"gancompress {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GanCompressError as exc:
        print(f"gancompress {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def strict_json(obj: object) -> object:
    """``obj`` with every non-finite float (a PSNR of identical images is +inf) replaced by None.

    Python's json writes such floats as ``Infinity``/``NaN``, which strict JSON parsers reject.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def print_json(obj: object) -> None:
    """Print ``obj`` as strict JSON (non-finite numbers as null)."""
    print(json.dumps(strict_json(obj), indent=2, default=str, allow_nan=False))


if __name__ == "__main__":
    raise SystemExit(main())
