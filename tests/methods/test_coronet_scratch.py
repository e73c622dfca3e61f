"""CoroNetGAN without a teacher: trained from scratch from the command line, at tiny sizes.

The starting generator comes from ``--family`` and ``--set generator.options.*``; the run prunes it
to a MACs target relative to that full-width generator while the GAN trains, and ends in a plain
generator. The other methods still need ``--teacher``.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from gancompress.cli import main
from gancompress.config import recipes_dir
from gancompress.data import build_font_dataset
from gancompress.errors import ConfigError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.coronet.pipeline import Coronet
from gancompress.metrics.gate import quality_gate
from gancompress.models import create_generator

# A ResNet of base width 4 with 3 blocks at 32 px; pruning towards 0.3 of its MACs stops within a
# few steps (strong regularisation); 150 steps of L1 x100 are enough to beat copying the input.
START = ("generator.options.base_width=4", "generator.options.num_blocks=3")
TINY = START + (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "hypernet.embedding_dim=2",
    "discriminator.base_width=4",
    "prune.regularization=20.0",
    "prune.lr_latent=0.05",
    "planner.probe_steps=2",
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    root = tmp_path_factory.mktemp("coronet_scratch_data")
    return {
        "paired": build_font_dataset(root / "paired", size=32, max_chars=24, seed=0),
        "unpaired": build_font_dataset(root / "unpaired", size=32, max_chars=24, seed=0, paired=False),
    }


def argv_of(data, out, *overrides: str) -> list[str]:
    argv = ["compress", "--method", "coronet", "--data", str(data), "--out", str(out), "--family", "resnet"]
    argv += ["--ratio", "0.3", "--quick"]
    for o in TINY + overrides:
        argv += ["--set", o]
    return argv


@pytest.mark.slow
def test_from_scratch_cli_reaches_its_target_and_exports_the_extracted_generator(
    tmp_path, fonts, monkeypatch, capsys
):
    extracted = {}
    original = Coronet.extract

    def spy(self):
        student = original(self)
        extracted["generator"] = copy.deepcopy(student)
        return student

    monkeypatch.setattr(Coronet, "extract", spy)
    out = tmp_path / "run"
    overrides = ("prune.train.epochs=30", "prune.train.max_steps=150", "prune.train.lr_g=0.002")
    assert main(argv_of(fonts["paired"], out, *overrides, "finetune.max_steps=0")) == 0
    printed = capsys.readouterr().out
    assert "start (no teacher, trained from scratch) 4_4_4_4_4_4_4_4" in printed
    assert "quality gate: passed" in printed

    summary = json.loads((out / "method_summary.json").read_text())
    assert summary["teacher"] is None
    details = summary["details"]
    assert details["from_scratch"] is True and details["objective"] == "pix2pix"
    start = create_generator("resnet", base_width=4, num_blocks=3)
    assert details["start"]["arch"] == str(start.arch) == "4_4_4_4_4_4_4_4"
    # the target is relative to the full-width starting generator, and the pruned one is under it
    assert summary["target"]["macs"] == pytest.approx(0.3 * details["start"]["macs_paper"])
    assert details["pruning"]["under_target"] and details["pruning"]["reached_during_training"]
    assert summary["student"]["macs_paper"] == details["pruning"]["reached_macs"] <= summary["target"]["macs"]
    assert summary["macs_ratio"] == pytest.approx(
        details["start"]["macs_paper"] / summary["student"]["macs_paper"]
    )
    assert "relative to this full-width generator" in summary["notes"]["start"]
    # the gate scored against the ground truth beside copying the input; there is no teacher row
    assert set(summary["gate"]["scores"]) == {"student_vs_ground_truth", "copy_input_vs_ground_truth"}
    assert summary["gate"]["checks"]["teacher_std"] is None
    assert summary["plan"]["stages"]["prune"]["steps"] == 150  # the time planner timed the stage

    # the saved generators are plain ones, equal to the one generated once from the hypernetwork
    student, cli_copy = load_generator(out / "student"), load_generator(out / "generator")
    reference = extracted["generator"].eval()
    assert type(student) is type(start) and student.arch == reference.arch
    x = start.example_input((32, 32))
    for saved in (student, cli_copy):
        assert saved.state_dict().keys() == reference.state_dict().keys()
        for key, value in reference.state_dict().items():
            torch.testing.assert_close(saved.state_dict()[key], value, rtol=0, atol=0)
        torch.testing.assert_close(saved.eval()(x), reference(x))
    cli_summary = json.loads((out / "summary.json").read_text())
    assert cli_summary["teacher"] is None and cli_summary["start"]["arch"] == "4_4_4_4_4_4_4_4"

    # the same command resumes the finished run: the starting generator is the same, nothing retrains
    assert main(argv_of(fonts["paired"], out, *overrides, "finetune.max_steps=0")) == 0
    again = json.loads((out / "method_summary.json").read_text())
    assert again["stages"]["prune"]["trained_steps"] == 0
    assert again["student"]["arch"] == summary["student"]["arch"]


@pytest.mark.slow
def test_from_scratch_unpaired_runs_the_cyclegan_objective(tmp_path, fonts):
    out = tmp_path / "run"
    overrides = TINY + ("generator.name=resnet", "prune.train.max_steps=4", "finetune.max_steps=2")
    result = compress(
        "coronet", None, fonts["unpaired"], out, MethodOptions(ratio=0.3, quick=True, overrides=overrides)
    )
    summary = result.summary
    assert summary["teacher"] is None and summary["data_kind"] == "unpaired"
    assert summary["details"]["objective"] == "cyclegan"
    assert summary["student"]["macs_paper"] <= summary["target"]["macs"]
    assert summary["stages"]["finetune"]["trained_steps"] == 2
    # no teacher and no ground truth: the gate ran its finite and spread checks only
    assert summary["gate"]["scores"] == {} and summary["gate"]["checks"]["finite"] is True
    assert load_generator(out / "student").arch == result.generator.arch


def test_other_methods_name_the_missing_teacher_option(tmp_path, fonts, capsys):
    for method in ("fast-gan-compression", "gan-slimming"):
        argv = [
            "compress",
            "--method",
            method,
            "--data",
            str(fonts["paired"]),
            "--out",
            str(tmp_path / method),
        ]
        assert main(argv) == 2
        assert f"--teacher is required for {method}" in capsys.readouterr().err
        with pytest.raises(ConfigError, match="pass --teacher"):
            compress(method, None, fonts["paired"], tmp_path / "api", MethodOptions())


def test_from_scratch_needs_a_start_and_refuses_distillation(tmp_path, fonts):
    no_block = str(recipes_dir() / "methods" / "coronet" / "fonts_quick.yaml")  # has no generator: block
    with pytest.raises(ConfigError, match="generator to start from"):
        compress(
            "coronet",
            None,
            fonts["paired"],
            tmp_path / "a",
            MethodOptions(ratio=0.3, recipe=no_block, overrides=TINY),
        )
    with pytest.raises(ConfigError, match="generator.name: coronet supports"):
        options = MethodOptions(ratio=0.3, quick=True, overrides=TINY + ("generator.name=spade",))
        compress("coronet", None, fonts["paired"], tmp_path / "b", options)
    with pytest.raises(ConfigError, match="distil from a teacher"):
        overrides = TINY + ("generator.name=resnet", "loss.distill_output=1.0")
        compress(
            "coronet",
            None,
            fonts["paired"],
            tmp_path / "c",
            MethodOptions(ratio=0.3, overrides=overrides, quick=True),
        )
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    with pytest.raises(ConfigError, match="drop the recipe's generator block"):
        overrides = TINY + ("generator.name=resnet",)
        compress(
            "coronet",
            teacher,
            fonts["paired"],
            tmp_path / "d",
            MethodOptions(ratio=0.3, overrides=overrides, quick=True),
        )


def test_gate_without_a_teacher_compares_with_copying_the_input_on_the_ground_truth():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)  # copying the input is nearly the answer
    bad = quality_gate(lambda t: -t, None, [x], [y])
    assert not bad.passed and "against the ground truth" in bad.reason
    assert "student_vs_teacher" not in bad.scores and "copy_input_vs_ground_truth" in bad.scores
    good = quality_gate(lambda t: y, None, [x], [y])
    assert good.passed, good.reason
    flat = quality_gate(lambda t: torch.zeros_like(t), None, [x])  # no teacher to excuse a flat output
    assert not flat.passed and "constant" in flat.reason and flat.scores == {}
