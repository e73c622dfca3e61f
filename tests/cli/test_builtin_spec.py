"""One parser for ``builtin:NAME[-paired|-unpaired][@SIZE]``: every verb reads the same data for the
same spec (train, compress, evaluate, export, benchmark, demo), and nothing else parses the prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

import gancompress.bench.benchmark
import gancompress.bench.demo
import gancompress.data.builtin as builtin
import gancompress.export.int8
import gancompress.export.onnx
import gancompress.methods
import gancompress.metrics.evaluate
import gancompress.training.teacher
from gancompress.cli import main
from gancompress.data.builtin import BuiltinSpec, parse_builtin_spec, resolve_data_spec
from gancompress.errors import ConfigError, DataError
from gancompress.export.saved import save_generator
from gancompress.models import create_generator


class Reached(Exception):
    pass


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("builtin:fonts", BuiltinSpec("fonts")),
        ("builtin:fonts-paired", BuiltinSpec("fonts", "paired")),
        ("builtin:fonts-unpaired@128", BuiltinSpec("fonts", "unpaired", 128)),
        ("builtin:fonts@32", BuiltinSpec("fonts", None, 32)),
    ],
)
def test_grammar(spec, parsed):
    assert parse_builtin_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec", ["builtin:", "builtin:fonts@", "builtin:fonts@0", "builtin:fonts@nan", "builtin:fonts@9999"]
)
def test_malformed_specs_are_named(spec):
    with pytest.raises(ConfigError, match="--data"):
        parse_builtin_spec(spec)


def test_unknown_name_points_to_data_prepare():
    with pytest.raises(DataError, match="data prepare maps"):
        resolve_data_spec("builtin:maps")


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """ensure_builtin_dataset replaced by a recorder: (name, size, paired) per call, nothing built."""
    calls: list[tuple[str, int, bool]] = []

    def fake(name="fonts", root=None, size=64, paired=True):
        calls.append((name, size, paired))
        path = builtin.builtin_path(name, size, paired, root=tmp_path / "cache")
        path.mkdir(parents=True, exist_ok=True)
        return path

    monkeypatch.setattr(builtin, "ensure_builtin_dataset", fake)
    return calls


def test_the_same_spec_is_the_same_data_on_every_verb(monkeypatch, tmp_path, recorded, capsys):
    seen: dict[str, Path] = {}

    def capture(verb, index=None, key=None):
        def fn(*args, **kwargs):
            value = kwargs[key] if key else args[index]
            seen[verb] = Path(value)
            raise Reached(verb)

        return fn

    monkeypatch.setattr(gancompress.methods, "compress", capture("compress", 2))
    monkeypatch.setattr(gancompress.training.teacher, "build_datasets", capture("train", 1))
    monkeypatch.setattr(gancompress.metrics.evaluate, "evaluate_generator", capture("evaluate", 1))
    monkeypatch.setattr(gancompress.bench.benchmark, "run_benchmark", capture("benchmark", 2))
    monkeypatch.setattr(gancompress.bench.demo, "train_demo_teacher", capture("demo", 2))
    monkeypatch.setattr(gancompress.export.onnx, "export_onnx", lambda g, path, **kw: Path(path))
    monkeypatch.setattr(gancompress.export.int8, "calibration_inputs", capture("export", 1))
    g = str(save_generator(create_generator("resnet", base_width=4, num_blocks=3), tmp_path / "g"))
    out = str(tmp_path / "out")
    spec = "builtin:fonts@32"
    for argv in (
        ["compress", "--method", "coronet", "--teacher", g, "--data", spec, "--out", out],
        ["train", "--task", "pix2pix", "--data", spec, "--out", out],
        ["evaluate", g, "--data", spec],
        ["benchmark", "--teacher", g, "--data", spec, "--out", out],
        ["export", g, "--out", out, "--data", spec, "--formats", "int8"],
        ["demo", "--out", out, "--set", f"data={spec}"],
    ):
        assert main(argv) == 1  # the Reached sentinel: an internal error
        assert "Reached" in capsys.readouterr().err
    assert set(seen) == {"compress", "train", "evaluate", "benchmark", "export", "demo"}
    assert len(set(seen.values())) == 1, seen
    assert set(recorded) == {("fonts", 32, True)}
    assert next(iter(seen.values())) == builtin.builtin_path("fonts", 32, True, root=tmp_path / "cache")


def test_unpaired_training_reads_the_unpaired_layout_and_refuses_the_paired_one(recorded):
    from gancompress.training.recipe import default_recipe_path, load_train_recipe

    recipe = load_train_recipe(default_recipe_path("cyclegan"), ["data.root=builtin:fonts"])
    assert "unpaired" in gancompress.training.teacher.resolve_data_root(recipe).name
    assert recorded[-1] == ("fonts", recipe.data.builtin_size, False)
    recipe = load_train_recipe(default_recipe_path("cyclegan"), ["data.root=builtin:fonts-paired"])
    with pytest.raises(ConfigError, match="builtin:fonts-unpaired"):
        gancompress.training.teacher.resolve_data_root(recipe)


def test_no_other_module_parses_the_prefix():
    root = Path(builtin.__file__).parents[1]
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "builtin.py"
        and any(token in path.read_text() for token in ('"builtin:"', "'builtin:'", 'startswith("builtin'))
    ]
    assert offenders == []
