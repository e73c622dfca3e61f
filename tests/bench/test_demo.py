"""The demo pipeline at a tiny scale: teacher, one method, the others listed, benchmark, report; resumable."""

import dataclasses
import json

import pytest

import gancompress.methods as methods_pkg
from gancompress.bench.demo import (
    ALL_METHODS,
    DemoBenchmark,
    DemoMethodOptions,
    DemoRecipe,
    DemoTeacher,
    run_demo,
)
from gancompress.errors import ConfigError
from gancompress.methods.base import CompressionResult


def _tiny_recipe(data):
    return DemoRecipe(
        data=str(data),
        teacher=DemoTeacher(
            recipe="train/pix2pix_fonts.yaml",
            overrides=(
                "generator.options.base_width=4",
                "discriminator.base_width=4",
                "data.load_size=32",
                "data.crop_size=32",
                "train.max_steps=2",
                "train.num_samples=0",
            ),
        ),
        methods=("gan-compression", "gan-slimming"),
        method=DemoMethodOptions(quick=True, ratio=0.5),
        benchmark=DemoBenchmark(
            runtimes=("eager", "ort-fp32"),
            threads=1,
            warmup=0,
            repeats=1,
            extractors=(),
            max_images=6,
            calibration=2,
            num_samples=2,
        ),
    )


def test_demo_smoke_and_resume(tmp_path, fonts32, monkeypatch):
    calls = []

    def fake_compress(method, teacher, data, out, options):
        # a stand-in for the method's training: the teacher's leading channels, a legal subnet
        calls.append((method, options.quick, options.ratio))
        return CompressionResult(method, teacher.extract_subnet("2_2_2_2_2_2_2_2"), summary={"steps": 0})

    monkeypatch.setattr(methods_pkg, "compress", fake_compress)
    monkeypatch.setattr(methods_pkg, "list_methods", lambda pattern="*": ["gan-compression"])
    recipe = _tiny_recipe(fonts32)
    state = run_demo(tmp_path, recipe=recipe, quick=True)

    assert calls == [("gan-compression", True, 0.5)]
    assert state["stages"]["teacher"]["status"] == "trained"
    m = state["methods"]
    assert set(m) == set(ALL_METHODS)
    assert m["gan-compression"]["status"] == "ran"
    assert m["gan-slimming"]["status"] == "not yet available"
    assert m["fast-gan-compression"]["status"] == "skipped" and m["int8"]["status"] == "benchmarked"
    results = json.loads((tmp_path / "results.json").read_text())
    names = [r["name"] for r in results["rows"]]
    assert names == ["teacher", "teacher int8", "gan-compression", "gan-compression int8"]
    rows = {r["name"]: r for r in results["rows"]}
    assert (
        rows["gan-compression"]["method"] == "gan-compression"
        and rows["gan-compression"]["arch"] == "2_2_2_2_2_2_2_2"
    )
    assert rows["gan-compression"]["macs_paper"] < rows["teacher"]["macs_paper"]
    assert any("gan-slimming: not yet available" in n for n in results["notes"])
    md = (tmp_path / "results.md").read_text()
    assert "gan-slimming: not yet available" in md and "| gan-compression int8 |" in md
    for name in ("report.html", "samples.png", "latency_vs_macs.png", "quality_vs_macs.png", "demo.json"):
        assert (tmp_path / name).is_file(), name
    assert state["report"] == str(tmp_path / "report.html")

    # a re-run reuses the teacher and the finished method, and compresses nothing again
    state2 = run_demo(tmp_path, recipe=recipe, quick=True)
    assert state2["stages"]["teacher"]["status"] == "reused"
    assert state2["methods"]["gan-compression"]["status"] == "reused" and len(calls) == 1
    assert (tmp_path / "quick" / "teacher" / "generator" / "config.json").is_file()

    # stages made with another teacher recipe are refused rather than mixed in
    other = dataclasses.replace(
        recipe, teacher=dataclasses.replace(recipe.teacher, overrides=("train.max_steps=3",))
    )
    with pytest.raises(ConfigError, match="recipe.json"):
        run_demo(tmp_path, recipe=other, quick=True)


def test_demo_failure_of_a_method_is_reported(tmp_path, fonts32, monkeypatch):
    def failing(method, teacher, data, out, options):
        raise ConfigError("budget too small for this teacher")

    monkeypatch.setattr(methods_pkg, "compress", failing)
    monkeypatch.setattr(methods_pkg, "list_methods", lambda pattern="*": ["gan-compression"])
    recipe = _tiny_recipe(fonts32)
    state = run_demo(tmp_path, recipe=recipe)
    entry = state["methods"]["gan-compression"]
    assert entry["status"] == "failed" and "budget too small" in entry["detail"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in results["rows"]] == [
        "teacher",
        "teacher int8",
    ]
    assert "budget too small" in results["failed_models"]["gan-compression"]
    assert "**GAN Compression** (`gan-compression`): **FAILED**" in (tmp_path / "results.md").read_text()


def test_demo_recipe_validation():
    with pytest.raises(ConfigError, match="unknown"):
        DemoRecipe(methods=("magic",))
