"""Every option of every verb, read from the argparse parsers themselves, given bad values: NaN,
infinity, negative, zero, huge, malformed and missing files. Each must end in a non-zero exit and one
error line that names the option (or the bad value), never a traceback, and before any library work.

A new option is covered the day it is added: typed options (``gancompress.utils.options``) get bad
values from their type; an untyped one must be listed in ``UNTYPED`` below, or this test fails.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gancompress.bench.benchmark
import gancompress.bench.demo
import gancompress.data.prepare
import gancompress.export.onnx
import gancompress.methods
import gancompress.metrics.evaluate
import gancompress.training.teacher
from gancompress.cli import build_parser, main
from gancompress.export.saved import save_generator
from gancompress.models import create_generator
from gancompress.utils.options import ListAction, SizeAction
from imagefiles import save

FLAGS_WITHOUT_VALUES = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction)
SKIP = {"--help", "--version", "--debug"}
# options without a type function: the bad values to try, or None where any text is valid (a new output
# path). "runtime": the value is checked by the library, so the library runs (on tiny data).
UNTYPED = {
    "--out": None,
    "--set": {"values": ["bogus", "=1", "nosuchfield.x=1"], "runtime": True},
    "--split": {"values": ["nosuchsplit"], "runtime": True},
    "--segmenter": {"values": ["nosuchsegmenter"], "runtime": True},
    "--arch": {"values": ["1_2_x"], "runtime": True},
    "--preset": {"values": ["nosuchpreset"], "runtime": True},
    "--entry": None,  # a key of a wrapping dict: only a .pth checkpoint has one
    "--keep-fp32": None,  # ONNX node names are free text; first/last/op types are checked at export
    "--student": {"values": ["bogus", "a=/nonexistent/gen", "=x"], "runtime": True},
    "target": {"values": ["nosuchfamily", "/nonexistent/dir"], "runtime": True},
    "name": {"values": ["nosuchdataset"], "runtime": True},
}
MISSING = "/nonexistent/gancompress-test/missing"


class LibraryReached(Exception):
    """Raised by the patched library entry points: an option got past the command line unchecked."""


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(("data", "prepare"), parser), … for every leaf subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from subcommands(sub, (*prefix, name))
                else:
                    yield (*prefix, name), sub


def bad_values(action: argparse.Action) -> list[list[str]] | None:
    """Token lists to try for ``action``; None when any value is valid; raises if it is unclassified."""
    kind = action.type
    bounds = getattr(kind, "bounds", None)
    if bounds is not None:
        num, low, high = bounds
        values = ["nan", "inf", "-inf", "bogus", "1e400"]
        if num is int:
            values.append("1.5")
        if low is not None:
            values += [str(low - 1), str(-abs(low) - 10**6)]
            if low >= 1:
                values.append("0")
        if high is not None:
            values += [str(high + 1), str(int(high) * 10**6)]
        return [[v] for v in values]
    if isinstance(action, SizeAction):
        too_big = str(action.max_side + 1)  # profile counts on the meta device: a larger bound
        return [["0"], ["-1"], ["nan"], ["inf"], [too_big], ["bogus"], ["3x"], ["2", "0"], ["1", "2", "3"]]
    if isinstance(action, ListAction) and action.allowed is not None:
        return [["bogus"], ["bogus,other"]]
    if action.choices is not None:
        return [["bogus"], ["nan"]]
    name = getattr(kind, "__name__", "")
    if name.startswith("existing") or name == "generator":
        return [[MISSING]]
    if name == "dataset":
        return [[MISSING], ["builtin:bogus"], ["builtin:fonts@0"], ["builtin:fonts@nan"], ["builtin:"]]
    if name == "device":
        values = [["bogus"], ["cuda:99"], ["cpu:1"], ["nan"]]
        if not torch.cuda.is_available():
            values.append(["cuda"])
        return values
    if name == "method":
        return [["bogus"]]
    if name == "duration":
        return [["0"], ["-1"], ["nan"], ["inf"], ["1x"], ["bogus"], ["m"]]
    key = action.option_strings[0] if action.option_strings else action.dest
    if key not in UNTYPED:
        raise AssertionError(
            f"option {key} has no type function and is not listed in UNTYPED: give it one from "
            "gancompress.utils.options, or list the bad values it must refuse"
        )
    entry = UNTYPED[key]
    return None if entry is None else [[v] for v in entry["values"]]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli-options")
    rng = np.random.default_rng(0)
    data = root / "data"
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            save(data / split / f"{i}.png", rng.integers(0, 256, size=(32, 64, 3), dtype=np.uint8))
    generator = save_generator(create_generator("resnet", base_width=4, num_blocks=3), root / "generator")
    recipe = root / "recipe.yaml"
    recipe.write_text("task: pix2pix\n")
    return {"data": str(data), "generator": str(generator), "recipe": str(recipe), "out": str(root / "out")}


def base_argv(verb: tuple[str, ...], f: dict[str, str]) -> list[str]:
    """A command line that parses: the required arguments of ``verb`` with valid values."""
    g, d, out = f["generator"], f["data"], f["out"]
    return {
        ("list",): ["list"],
        ("profile",): ["profile", "resnet"],
        ("compress",): ["compress", "--method", "gan-slimming", "--teacher", g, "--data", d, "--out", out],
        ("train",): ["train", "--task", "pix2pix", "--data", d, "--out", out, "--recipe", f["recipe"]],
        ("evaluate",): ["evaluate", g, "--data", d, "--extractors", "none"],
        ("benchmark",): ["benchmark", "--teacher", g, "--data", d, "--out", out],
        ("demo",): ["demo", "--out", out],
        ("export",): ["export", g, "--out", out, "--formats", "onnx"],
        ("import",): ["import", g, "--out", out],
        ("data", "list"): ["data", "list"],
        ("data", "prepare"): ["data", "prepare", "fonts", "--out", out],
    }[verb]


def with_value(
    argv: list[str], action: argparse.Action, tokens: list[str], verb: tuple[str, ...]
) -> list[str]:
    if action.option_strings:
        return [*argv, action.option_strings[0], *tokens]
    # a positional: replace its value in the base command line (it follows the verb's words)
    position = len(verb)
    return [*argv[:position], *tokens, *argv[position + 1 :]]


def cases():
    parser = build_parser()
    for verb, sub in subcommands(parser):
        for action in sub._actions:
            if isinstance(action, FLAGS_WITHOUT_VALUES) or SKIP & set(action.option_strings):
                continue
            values = bad_values(action)
            for tokens in values or []:
                key = action.option_strings[0] if action.option_strings else action.dest
                runtime = bool((UNTYPED.get(key) or {}).get("runtime"))
                yield pytest.param(
                    verb, key, tokens, runtime, id=f"{' '.join(verb)} {key} {' '.join(tokens)}"
                )


def test_every_verb_is_covered():
    verbs = {verb for verb, _ in subcommands(build_parser())}
    assert {("compress",), ("train",), ("evaluate",), ("benchmark",), ("demo",), ("export",)} <= verbs
    assert sum(1 for _ in cases()) > 150


@pytest.fixture
def no_library(monkeypatch):
    """The verbs' library entry points, replaced: reaching one means an option was not checked."""

    def reached(*args, **kwargs):
        raise LibraryReached("LIBRARY-REACHED")

    for module, name in (
        (gancompress.methods, "compress"),
        (gancompress.training.teacher, "train_teacher"),
        (gancompress.metrics.evaluate, "evaluate_generator"),
        (gancompress.bench.benchmark, "run_benchmark"),
        (gancompress.bench.demo, "run_demo"),
        (gancompress.export.onnx, "export_onnx"),
        (gancompress.data.prepare, "prepare_dataset"),
    ):
        monkeypatch.setattr(module, name, reached)


@pytest.mark.parametrize(("verb", "option", "tokens", "runtime"), list(cases()))
def test_bad_option_value_is_a_named_error(verb, option, tokens, runtime, files, capsys, request, tmp_path):
    if not runtime:
        request.getfixturevalue("no_library")
    f = dict(files, out=str(tmp_path / "out"))
    parser = build_parser()
    sub = dict(subcommands(parser))[verb]
    action = next(a for a in sub._actions if (a.option_strings or [a.dest])[0] == option)
    argv = with_value(base_argv(verb, f), action, tokens, verb)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, f"{argv} exited 0"
    assert "Traceback" not in err and "LIBRARY-REACHED" not in err, err
    named = option if action.option_strings else None
    # the option, the bad value, or (for --set a.b=v) the field it names
    words = [w for t in tokens for w in (t, *re.split(r"[.=]", t)) if len(w) >= 3]
    assert (named and named in err) or any(w in err for w in words), f"{argv}: {err}"
    assert "internal error" not in err, err


def test_options_a_method_does_not_read_are_refused_by_name(files, capsys, no_library, tmp_path):
    base = [
        "compress",
        "--teacher",
        files["generator"],
        "--data",
        files["data"],
        "--out",
        str(tmp_path / "o"),
    ]
    for option, value in (("--rho", "0.1"), ("--bits", "8"), ("--budget-latency-ms", "5")):
        assert main([*base, "--method", "coronet", option, value]) == 2
        err = capsys.readouterr().err
        assert option in err and "coronet does not use it" in err


def test_valid_values_parse(files):
    parser = build_parser()
    base = ["compress", "--method", "gan-slimming", "--teacher", files["generator"], "--data", files["data"]]
    args = parser.parse_args(
        [*base, "--out", "o", "--ratio", "0.3", "--seed", str(2**63 - 1), "--time-budget", "1h30m"]
        + ["--precision", "bf16", "--device", "auto", "--threads", "1"]
    )
    assert args.ratio == 0.3 and args.seed == 2**63 - 1 and args.time_budget == 5400.0
    assert args.precision == "bf16" and args.device in ("cpu", "cuda") and args.threads == 1
    for text, seconds in (("90s", 90), ("60m", 3600), ("1h", 3600), ("3600", 3600), ("1.5h", 5400)):
        assert parser.parse_args([*base, "--out", "o", "--time-budget", text]).time_budget == seconds
    for tokens, size in ((["64"], (64, 64)), (["64", "128"], (64, 128)), (["64x128"], (64, 128))):
        assert parser.parse_args(["profile", "resnet", "--size", *tokens]).size == size
    export = ["export", files["generator"], "--out", "o"]
    for tokens in (["onnx,int8"], ["onnx", "int8"], ["onnx,", "int8"]):
        assert parser.parse_args([*export, "--formats", *tokens]).formats == ["onnx", "int8"]
    assert parser.parse_args([*export, "--rewrites", "none"]).rewrites == []
    assert parser.parse_args([*export, "--rewrites", ""]).rewrites == []
    # verbs that run on the CPU keep auto as auto, so an explicit --device auto works on a GPU machine too
    assert parser.parse_args([*export, "--device", "auto"]).device == "auto"
    assert parser.parse_args([*export, "--device", "cpu"]).device == "cpu"


def test_every_model_verb_has_device_json_and_threads():
    verbs = dict(subcommands(build_parser()))
    for verb in ("train", "compress", "evaluate", "export", "benchmark", "demo"):
        flags = {s for a in verbs[(verb,)]._actions for s in a.option_strings}
        assert {"--device", "--json", "--threads"} <= flags, verb
    for verb, sub in verbs.items():
        for action in sub._actions:
            if "--size" in action.option_strings:
                assert isinstance(action, SizeAction), f"{verb}: --size must use the one size parser"
    bench = next(a for a in verbs[("benchmark",)]._actions if "--threads" in a.option_strings)
    assert bench.default == 1
    for verb in ("train", "compress", "evaluate", "export", "benchmark", "demo"):
        device = next(a for a in verbs[(verb,)]._actions if "--device" in a.option_strings)
        assert device.default == "auto", verb


def test_two_bad_options_through_the_installed_entry_point():
    for argv, option in (
        (["evaluate", "identity", "--data", MISSING], "--data"),
        (["profile", "--size"], ""),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gancompress.cli", *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr and option in done.stderr


def test_paths_are_named(files, capsys):
    assert main(["evaluate", str(Path(MISSING)), "--data", files["data"]]) == 2
    assert MISSING in capsys.readouterr().err
