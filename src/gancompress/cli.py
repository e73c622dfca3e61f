"""The ``gancompress`` command line: thin subcommands over the public API.

Each area of the library contributes its subcommands through a ``register_cli(subparsers)`` function
in one module listed in ``COMMAND_MODULES``; every subcommand sets ``func`` (args → exit code).

:func:`main` is the one error boundary: whatever reaches it becomes one line naming the file, field or
option and what to do, with a non-zero exit status (2: bad input, a :class:`GanCompressError`; 1: the
environment or an internal error; 130: interrupted). ``--debug`` or ``GANCOMPRESS_DEBUG=1`` also prints
the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import math
import os
import sys
import traceback
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
DEBUG_FLAG = "--debug"
DEBUG_ENV = "GANCOMPRESS_DEBUG"
# what to do about the storage errors users meet; the errno's own text says what happened
ERRNO_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere, then rerun the same command",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere, then rerun",
    errno.EROFS: "the file system is read-only: write to another folder (--out, or GANCOMPRESS_CACHE)",
    errno.EACCES: "permission denied: check the file's permissions or use another path",
    errno.EPERM: "operation not permitted: check the file's permissions or use another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "a folder is where a file was expected: check the path",
    errno.EEXIST: "it already exists: remove it or choose another path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or lower the data loader's workers",
    errno.ENAMETOOLONG: "the file name is too long: use a shorter path",
}

# torch's messages when a network and its input (or its own config) disagree
SHAPE_ERRORS = (
    "expected input",
    "to have 3 channels",
    "channels, but got",
    "size mismatch",
    "shapes cannot be multiplied",
    "negative dimension",
    "must match the size of tensor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gancompress",
        description="Compress conditional GAN generators and measure them honestly.",
    )
    parser.add_argument("--version", action="version", version=f"gancompress {__version__}")
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help=f"print the traceback of an error (anywhere on the command line; or {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def _debug_wanted(argv: list[str]) -> tuple[bool, list[str]]:
    """Whether a traceback is wanted (``--debug`` anywhere, or the environment), and argv without it."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    rest = [a for a in argv if a != DEBUG_FLAG]
    return env or len(rest) != len(argv), rest


def _paths_given(args: argparse.Namespace | None) -> str:
    """``--recipe a.yaml, --teacher t/``: the file options of this command, for errors without a file name."""
    if args is None:
        return ""
    names = ("recipe", "teacher", "data", "model", "generator", "target", "inception_weights")
    given = [f"--{n.replace('_', '-')} {getattr(args, n)}" for n in names if getattr(args, n, None)]
    return f" (files given: {', '.join(given)})" if given else ""


def describe_error(exc: BaseException, args: argparse.Namespace | None = None) -> tuple[str, int]:
    """(one-line message, exit status) for any exception that reaches the command line."""
    if isinstance(exc, GanCompressError):
        code = int(getattr(exc, "exit_code", 2))
        if isinstance(exc, OSError) and exc.strerror and exc.errno in ERRNO_ADVICE:  # StorageError
            name = errno.errorcode.get(exc.errno, "")
            return f"{exc.strerror} ({name}); {ERRNO_ADVICE[exc.errno]}", code
        return str(exc), code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; rerun the same command to resume", 130
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        where = "GPU" if type(exc).__name__ == "OutOfMemoryError" else "CPU"
        return (
            f"out of {where} memory{_paths_given(args)}: use a smaller --batch-size or --size, a smaller "
            "model, or a machine with more memory; check that the config's widths and block counts are sane",
            1,
        )
    if isinstance(exc, RecursionError):
        return (
            f"a file is nested too deeply to read{_paths_given(args)}: check the recipe or config.json "
            "for a runaway nesting of lists or objects",
            2,
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a text file is not UTF-8{_paths_given(args)}: byte {exc.object[exc.start : exc.start + 1]!r} "
            f"at offset {exc.start}; save the recipe or JSON file as UTF-8",
            2,
        )
    if type(exc).__name__ == "DecompressionBombError":
        return (
            f"an image is too large to decode safely ({exc}){_paths_given(args)}: downscale it or remove "
            "it from the dataset",
            2,
        )
    if isinstance(exc, OSError):
        return _describe_os_error(exc), 1
    if isinstance(exc, RuntimeError) and any(p in str(exc) for p in SHAPE_ERRORS):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"a model does not fit its input or its config ({first}){_paths_given(args)}: check that the "
            "generator's channels match the data's and that the config's widths are positive",
            2,
        )
    return (
        f"internal error ({type(exc).__name__}: {exc}){_paths_given(args)}; rerun with {DEBUG_FLAG} for the "
        "traceback and report it",
        1,
    )


def _describe_os_error(exc: OSError) -> str:
    code = exc.errno
    name = errno.errorcode.get(code, "") if code is not None else ""
    reason = exc.strerror or str(exc)
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    advice = ERRNO_ADVICE.get(code, "check the path and the disk") if code is not None else "check the path"
    head = f"{where}: " if where else ""
    return f"{head}{reason}{f' ({name})' if name else ''}; {advice}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (errors are printed, never raised)."""
    debug, argv = _debug_wanted(list(sys.argv[1:] if argv is None else argv))
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse has printed the usage and the option's error
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(_run(args) or 0)
    except BrokenPipeError:  # `gancompress ... | head`: the reader left; nothing to report
        return 141
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        if debug:
            traceback.print_exc()
        message, code = describe_error(exc, args)
        command = " ".join(
            filter(None, (getattr(args, "command", None), getattr(args, "data_command", None)))
        )
        print(f"gancompress{' ' + command if command else ''}: error: {message}", file=sys.stderr)
        return code


def _run(args: argparse.Namespace) -> int:
    """``args.func(args)`` with the CPU threads the command asked for, restored afterwards."""
    import torch

    from .utils.threads import apply_threads, default_threads

    before = torch.get_num_threads()
    if hasattr(args, "threads") and args.command != "benchmark":  # the benchmark sets its own
        apply_threads(args.threads if args.threads is not None else min(default_threads(), before))
    try:
        return args.func(args)
    finally:
        torch.set_num_threads(before)


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
