"""Typed command-line options shared by every verb: argparse ``type=`` functions that reject NaN and
infinity wherever a finite number is meant, values out of range, malformed sizes, durations and lists,
each with a message that says what is allowed. argparse adds the option's name (``argument --ratio:
...``), prints the usage line and exits with status 2, so a bad option never reaches the library.

Example:
    >>> p.add_argument("--ratio", type=number(float, low=0, high=1, low_open=True, high_open=True))
    >>> p.add_argument("--size", **SIZE_OPTION)                   # N, H W or HxW, the same on every verb
    >>> add_list_option(p, "--formats", choices=FORMATS, default=FORMATS)
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MAX_SIDE = 4096  # --size per side: a 4096x4096 RGB fp32 batch of one is 200 MB before any layer
MAX_SEED = 2**63 - 1
PRECISIONS = ("fp32", "bf16", "fp16")
NONE_WORDS = ("", "none")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_num(high)}"
    return ""


def number(
    kind: type = float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    why_high: str = "",
) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` (int or float) within the given bounds.

    Integers accept ``1e6``-style input when it is whole; NaN and infinity are always refused.
    ``why_high`` says why the upper bound exists (e.g. the memory a larger value needs).
    """

    def parse(text: str) -> Any:
        allowed = (
            f"a finite {'whole ' if kind is int else ''}number {_range_text(low, high, low_open, high_open)}"
        )
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {allowed}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {allowed}")
        if kind is int:
            if value != int(value):
                raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected {allowed}")
            value = int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else int(value)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            why = f" ({why_high})" if too_high and why_high else ""
            raise argparse.ArgumentTypeError(f"{text}: expected {allowed}{why}")
        return value

    parse.__name__ = kind.__name__  # argparse's fallback message says "invalid int value"
    parse.bounds = (kind, low, high)  # type: ignore[attr-defined]  # read by the option tests
    return parse


def positive_int(high: int | None = None) -> Callable[[str], int]:
    """A whole number >= 1 (and <= ``high``)."""
    return number(int, low=1, high=high)


def non_negative_int(high: int | None = None) -> Callable[[str], int]:
    """A whole number >= 0 (and <= ``high``)."""
    return number(int, low=0, high=high)


positive_float = number(float, low=0, low_open=True)
non_negative_float = number(float, low=0)
fraction = number(float, low=0, high=1, low_open=True, high_open=True)
seed = number(int, low=0, high=MAX_SEED)


def image_size(text: str, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """``"256"`` → (256, 256); ``"256x512"`` or ``"256,512"`` → (256, 512): height, width."""
    parts = re.split(r"[x,]", text.strip().lower())
    if not 1 <= len(parts) <= 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N, H W or HxW")
    side = number(int, low=1, high=max_side)
    try:
        dims = [side(p) for p in parts]
    except argparse.ArgumentTypeError:
        why = " (a larger side needs more memory than one image should take)" if max_side <= MAX_SIDE else ""
        raise argparse.ArgumentTypeError(
            f"{text!r}: each side must be a whole number in [1, {max_side}]{why}"
        ) from None
    return (dims[0], dims[-1])


class SizeAction(argparse.Action):
    """``--size N``, ``--size H W`` or ``--size HxW``: stores an (H, W) tuple."""

    max_side = MAX_SIDE

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        values = list(values)
        side = self.max_side
        try:
            if len(values) == 1:
                size = image_size(values[0], side)
            elif len(values) == 2 and not any(re.search(r"[x,]", v.lower()) for v in values):
                size = (image_size(values[0], side)[0], image_size(values[1], side)[0])
            else:
                raise argparse.ArgumentTypeError(f"{' '.join(values)!r}: expected N, H W or HxW")
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, size)


SIZE_HELP = f"input size: N (square), H W or HxW, each side in [1, {MAX_SIDE}]"
SIZE_OPTION: dict[str, Any] = {"nargs": "+", "action": SizeAction, "metavar": "N"}


class MetaSizeAction(SizeAction):
    """``--size`` of ``profile``, which counts on the meta device: no memory limits the side."""

    max_side = 1_000_000


META_SIZE_HELP = f"input size: N (square), H W or HxW, each side in [1, {MetaSizeAction.max_side}]"
META_SIZE_OPTION: dict[str, Any] = {"nargs": "+", "action": MetaSizeAction, "metavar": "N"}


def square_side(size: tuple[int, int] | None, option: str = "--size") -> int | None:
    """The side of a square ``size`` (None stays None); a named error for a non-square one."""
    from ..errors import ConfigError

    if size is None:
        return None
    if size[0] != size[1]:
        raise ConfigError(
            f"{option} {size[0]} {size[1]}: this command works on square images; give one number"
        )
    return size[0]


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """Seconds from ``"90s"``, ``"60m"``, ``"1h"``, ``"1h30m"`` or a plain ``"3600"`` (seconds); > 0."""
    body = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION.match(body, pos)
        if not match:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a duration such as 90s, 60m, 1h, 1h30m or 3600"
            )
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if not body or not math.isfinite(total) or total <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a positive duration such as 90s, 60m, 1h or 3600"
        )
    return total


def existing_path(kind: str = "any") -> Callable[[str], str]:
    """An argparse type: a path that exists (``kind``: ``file``, ``dir`` or ``any``); returned as given."""

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if not path.exists():
            raise argparse.ArgumentTypeError(
                f"{text}: no such {'file or directory' if kind == 'any' else kind}"
            )
        if kind == "file" and not path.is_file():
            raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
        if kind == "dir" and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a file, not a directory")
        return text

    parse.__name__ = f"existing {kind}"
    return parse


def data_spec(text: str) -> str:
    """An argparse type: a dataset folder that exists, or a well-formed ``builtin:`` spec."""
    from ..data.builtin import BUILTIN_NAMES, is_builtin, parse_builtin_spec
    from ..errors import ConfigError

    if is_builtin(text):
        try:
            spec = parse_builtin_spec(text, option="")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
        if spec.name not in BUILTIN_NAMES:
            raise argparse.ArgumentTypeError(
                f"{text}: no built-in dataset {spec.name!r} (built-in: {', '.join(BUILTIN_NAMES)}); "
                f"build others with 'gancompress data prepare {spec.name} --out DIR'"
            )
        return text
    return existing_path("dir")(text)


data_spec.__name__ = "dataset"


def split_list(values: Sequence[str] | str) -> list[str]:
    """Comma- or space-separated tokens as one list (``none`` or ``''`` alone: the empty list)."""
    tokens = [values] if isinstance(values, str) else list(values)
    items = [item.strip() for token in tokens for item in token.split(",")]
    items = [item for item in items if item]
    if not items or (len(items) == 1 and items[0].lower() in NONE_WORDS):
        return []
    return list(dict.fromkeys(items))  # unique, in the given order


class ListAction(argparse.Action):
    """One list syntax on every verb: ``--opt a,b``, ``--opt a b`` and ``--opt none`` (empty)."""

    def __init__(self, *args, allowed: Callable[[str], bool] | Sequence[str] | None = None, **kwargs):
        self.allowed = allowed
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        items = split_list(values)
        if self.allowed is not None:
            ok = self.allowed if callable(self.allowed) else (lambda item: item in self.allowed)
            bad = [item for item in items if not ok(item)]
            if bad:
                known = self.metavar_choices()
                raise argparse.ArgumentError(self, f"unknown {', '.join(map(repr, bad))}; known: {known}")
        setattr(namespace, self.dest, items)

    def metavar_choices(self) -> str:
        if callable(self.allowed):
            return getattr(self.allowed, "known", "see --help")
        return ", ".join(self.allowed or ())


def add_list_option(
    parser: argparse.ArgumentParser,
    *flags: str,
    allowed: Callable[[str], bool] | Sequence[str] | None = None,
    default: Sequence[str] = (),
    help: str = "",
    **kwargs: Any,
) -> argparse.Action:
    """Add a list option in the one list syntax (comma- or space-separated, ``none`` for empty)."""
    text = f"{help} (comma- or space-separated; none or nothing for an empty list)".strip()
    if default:
        text = f"{text}; default {','.join(default)}"
    return parser.add_argument(
        *flags, nargs="*", action=ListAction, allowed=allowed, default=list(default), help=text, **kwargs
    )


def device_option(parser: argparse.ArgumentParser, help_extra: str = "") -> argparse.Action:
    """``--device`` with the one meaning (see :mod:`gancompress.utils.device`), default ``auto``."""
    from .device import DEVICE_HELP

    return parser.add_argument("--device", type=device_type, default="auto", help=DEVICE_HELP + help_extra)


def device_type(text: str) -> str:
    """An argparse type: a device usable on this machine, resolved (``auto`` → ``cuda`` or ``cpu``)."""
    from ..errors import ConfigError
    from .device import resolve_device

    try:
        return resolve_device(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--device {text}: ")) from None


device_type.__name__ = "device"


def device_spec(text: str) -> str:
    """Like :func:`device_type`, but ``auto`` stays ``auto``: for verbs that choose it themselves."""
    return "auto" if text.strip().lower() == "auto" else device_type(text)


device_spec.__name__ = "device"


def threads_option(parser: argparse.ArgumentParser, *, benchmark: bool = False) -> argparse.Action:
    """``--threads N``: torch (and ONNX Runtime) CPU threads. Default: the CPUs this process may use
    (:func:`gancompress.utils.threads.default_threads`); benchmarks: 1 (the most reproducible latency)."""
    from .threads import BENCHMARK_THREADS, MAX_THREADS

    if benchmark:
        text = f"CPU threads for latency (default {BENCHMARK_THREADS}: the most reproducible figure)"
        return parser.add_argument(
            "--threads", type=positive_int(MAX_THREADS), default=BENCHMARK_THREADS, help=text
        )
    text = "CPU threads (default: the CPUs this process may use, from its affinity and cgroup quota)"
    return parser.add_argument("--threads", type=positive_int(MAX_THREADS), default=None, help=text)


def json_option(parser: argparse.ArgumentParser) -> argparse.Action:
    """``--json``: print the result as one strict JSON object instead of text."""
    return parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def precision_option(parser: argparse.ArgumentParser) -> argparse.Action:
    """``--precision fp32|bf16|fp16``: autocast precision of the training stages (default fp32)."""
    return parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="training precision: fp32 (default), bf16, fp16",
    )
