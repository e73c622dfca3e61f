"""Every registered method, through the one runner, at tiny size: the tests a new method inherits.

A tiny compress end to end (the summary has the schema's keys, the saved student loads and equals the
returned one, the target is met, the plan is printed), a time budget that shortens the stages, and
the quality gate catching a constant student (kept as ``student.failed``, the run failing by name).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gancompress.config import recipes_dir
from gancompress.data import build_font_dataset
from gancompress.errors import QualityGateError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress, list_methods
from gancompress.methods.common.method import Method, method_class, method_for_recipe
from gancompress.methods.common.recipe import load_method_recipe
from gancompress.methods.common.runner import SUMMARY_FILE, SUMMARY_KEYS
from gancompress.models import create_generator

COMMON = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "discriminator.base_width=4",
    "discriminator.num_layers=2",
    "planner.probe_steps=2",
)
TINY = {
    "gan-compression": (
        "mobile_teacher.train.max_steps=2",
        "supernet.train.max_steps=3",
        "finetune.max_steps=2",
        "search.eval_batch_size=4",
        "search.calibration_batches=1",
    ),
    "fast-gan-compression": (
        "supernet.train.max_steps=3",
        "finetune.max_steps=2",
        "search.population=4",
        "search.generations=1",
        "search.eval_batch_size=4",
        "search.calibration_batches=1",
    ),
    "gan-slimming": ("slim.train.max_steps=3", "finetune.max_steps=2", "quant.calibration_images=4"),
    "cat": (
        "teacher.base_width=8",
        "teacher.num_blocks=3",
        "teacher.kernel_sizes=[1,3]",
        "teacher.train.max_steps=60",
        "finetune.max_steps=20",
        "prune.min_channels=2",
    ),
    "coronet": (
        "hypernet.embedding_dim=2",
        "prune.train.max_steps=3",
        "finetune.max_steps=2",
        "prune.regularization=20.0",
        "prune.lr_latent=0.05",
    ),
    "omgd": ("train.max_steps=3",),
}
# methods without a fine-tuning stage need no override to skip it
NO_FINETUNE = {"omgd": ()}
METHODS = list_methods()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fonts(tmp_path_factory) -> Path:
    return build_font_dataset(tmp_path_factory.mktemp("registry") / "paired", size=32, max_chars=20, seed=0)


def teacher():
    torch.manual_seed(0)
    return create_generator("resnet", base_width=8, num_blocks=3)


def options(name: str, **kw) -> MethodOptions:
    extra = kw.pop("overrides", ())
    return MethodOptions(quick=True, ratio=0.5, overrides=COMMON + TINY[name] + tuple(extra), **kw)


def test_every_registered_method_is_a_method_with_a_tiny_setting_and_loadable_built_in_recipes():
    assert set(METHODS) == set(TINY), "a new method needs its tiny overrides here"
    for name in METHODS:
        cls = method_class(name)
        assert issubclass(cls, Method) and cls.name == name
        assert method_for_recipe(cls.recipe_class).recipe_class is cls.recipe_class
        for recipe in ("fonts.yaml", "fonts_quick.yaml"):
            r = load_method_recipe(cls.recipe_class, recipes_dir() / "methods" / cls.recipe_folder / recipe)
            assert r.gate.enabled and r.planner.enabled


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_tiny_compress_end_to_end_through_the_runner(tmp_path, fonts, name, capsys):
    t = teacher()
    result = compress(name, t, fonts, tmp_path / "run", options(name))
    summary = result.summary
    assert tuple(summary) == SUMMARY_KEYS
    on_disk = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())
    assert tuple(on_disk) == SUMMARY_KEYS and on_disk["method"] == name
    assert summary["gate"]["passed"] is True and summary["gate"]["scores"]["student_vs_teacher"]["psnr"] > 0
    assert summary["student"]["macs_paper"] <= summary["target"]["macs"] < summary["teacher"]["macs_paper"]
    assert summary["macs_ratio"] > 1 and set(summary["plan"]["stages"]) <= set(summary["stages"]) | {
        "finetune"
    }
    student = load_generator(tmp_path / "run" / "student")
    assert student.arch == result.generator.arch
    assert student.family == (method_class(name).student_family or t.family)
    x = t.example_input((32, 32))
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(x), result.generator.eval()(x))
    printed = capsys.readouterr().out
    assert "plan (step times measured on this machine)" in printed and "quality gate: passed" in printed


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_the_gate_fails_a_constant_student_keeping_it_under_a_failed_name(tmp_path, fonts, name, monkeypatch):
    cls = method_class(name)
    finetune = cls.finetune

    def constant(self, student):
        student = finetune(self, student)
        with torch.no_grad():
            for p in student.parameters():
                p.zero_()
        return student

    monkeypatch.setattr(cls, "finetune", constant)
    out = tmp_path / "run"
    with pytest.raises(QualityGateError, match="constant") as info:
        compress(
            name,
            teacher(),
            fonts,
            out,
            options(name, overrides=NO_FINETUNE.get(name, ("finetune.max_steps=0",))),
        )
    assert "student.failed" in str(info.value)
    assert (out / "student.failed" / "model.safetensors").is_file() and not (out / "student").exists()
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["gate"]["passed"] is False and "constant" in summary["gate"]["reason"]


@pytest.mark.slow
def test_a_time_budget_shortens_every_stage_in_proportion(tmp_path, fonts, capsys):
    name = "coronet"
    # the planned lengths follow this machine's load, and so does the student's quality: the gate is
    # tested above, the plan here
    long = (
        "gate.enabled=false",
        "prune.train.epochs=1000",
        "prune.train.max_steps=4000",
        "finetune.epochs=1000",
        "finetune.max_steps=2000",
    )
    result = compress(
        name, teacher(), fonts, tmp_path / "run", options(name, overrides=long, time_budget_s=60.0)
    )
    plan = result.summary["plan"]
    assert plan["budget_s"] == 60.0 and plan["scale"] < 1
    prune, ft = plan["stages"]["prune"], plan["stages"]["finetune"]
    assert prune["recipe_steps"] == 4000 and 10 <= prune["steps"] < 4000
    assert result.summary["stages"]["prune"]["steps"] == prune["steps"]
    assert result.summary["stages"]["finetune"]["steps"] == ft["steps"] < 2000
    assert "budget" in capsys.readouterr().out
