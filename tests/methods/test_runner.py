"""The shared runner's parts on their own: the quality gate, the planner, per-stage resume, the target,
the shared recipe blocks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gancompress.errors import CheckpointError, ConfigError
from gancompress.methods.base import MethodOptions
from gancompress.methods.common.plan import make_plan
from gancompress.methods.common.recipe import DataConfig, PlannerConfig, StageConfig
from gancompress.methods.common.resume import check_inputs, weights_digest
from gancompress.methods.common.target import resolve_target
from gancompress.metrics.gate import quality_gate
from gancompress.models import create_generator
from gancompress.recipe_blocks import check_version
from gancompress.training.recipe import DataConfig as TrainDataConfig


class Fixed(nn.Module):
    """A stand-in generator: ``fn(x)``."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def inputs(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


TEACHER = Fixed(lambda x: -x * 0.9)  # a task copying cannot solve: the colours inverted


def test_the_gate_passes_a_student_close_to_the_teacher_and_reports_every_reference():
    x = inputs()
    result = quality_gate(Fixed(lambda x: -x * 0.85), TEACHER, x, -x)
    assert result.passed and result.reason is None and result.images == 6
    assert set(result.scores) == {
        "student_vs_teacher",
        "copy_input_vs_teacher",
        "student_vs_ground_truth",
        "teacher_vs_ground_truth",
        "copy_input_vs_ground_truth",
    }
    s = result.scores
    assert s["student_vs_teacher"]["psnr"] > s["copy_input_vs_teacher"]["psnr"] + 10
    assert json.loads(json.dumps(result.to_dict()))["passed"] is True
    assert "quality gate: passed" in result.text()


@pytest.mark.parametrize(
    "student,why",
    [
        (Fixed(lambda x: torch.full_like(x, float("nan"))), "not finite"),
        (Fixed(lambda x: torch.zeros_like(x) + 0.3), "constant"),
        (
            Fixed(
                lambda x: torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5)).expand_as(x)
            ),
            "same image",
        ),
        (Fixed(lambda x: (x + 0.5).clamp(-1, 1)), "worse than copying the input"),
    ],
)
def test_the_gate_fails_broken_students_and_says_why(student, why):
    result = quality_gate(student, TEACHER, [inputs(3), inputs(3, seed=1)])
    assert not result.passed and why in result.reason


def test_the_gate_takes_a_real_generator_and_skips_the_copy_baseline_across_channel_counts():
    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=4, num_blocks=3, in_channels=1)
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    result = quality_gate(teacher, teacher, x)
    assert result.passed and "copy_input_vs_teacher" not in result.scores
    assert result.scores["student_vs_teacher"]["psnr"] == 100.0  # identical: capped, JSON-safe
    flat = quality_gate(Fixed(lambda x: torch.zeros(x.shape[0], 3, 16, 16)), teacher, x)
    assert not flat.passed and "constant" in flat.reason


def test_the_plan_keeps_the_recipes_proportions_and_its_minimums_within_the_budget():
    cfg = PlannerConfig(reserve=0.1, min_steps=5)
    unbounded = make_plan([("train", 1000, 0.5), ("finetune", 500, 0.2)], None, 3.0, cfg)
    assert unbounded.steps("train") == 1000 and unbounded.eta_s == pytest.approx(600)
    plan = make_plan([("train", 1000, 0.5), ("finetune", 500, 0.2)], 300.0, 30.0, cfg)
    assert plan.steps("train") / plan.steps("finetune") == pytest.approx(2, rel=0.01)
    assert plan.eta_s <= 300 * 0.9 - 30 and plan.eta_s > 0.95 * (300 * 0.9 - 30)
    assert plan.warning is None and "budget" in plan.text()
    tight = make_plan([("train", 1000, 0.5)], 1.0, 0.0, cfg)
    assert tight.steps("train") == 5 and "min_steps" in tight.warning
    assert make_plan([("train", 100, 0.1)], 1e6, 0.0, cfg).steps("train") == 100  # never past the recipe


def test_stage_inputs_are_recorded_and_a_resume_towards_others_is_refused(tmp_path):
    path = tmp_path / "stage" / "inputs.json"
    path.parent.mkdir()
    check_inputs(path, {"target_macs": 10.0, "arch": "4_4"}, resume=True)
    check_inputs(path, {"target_macs": 10.0, "arch": "4_4"}, resume=True)
    with pytest.raises(ConfigError, match=r"pruned towards target_macs=10.0, not target_macs=20.0"):
        check_inputs(path, {"target_macs": 20.0, "arch": "4_4"}, resume=True, what="pruned towards")
    check_inputs(path, {"target_macs": 20.0, "arch": "4_4"}, resume=False)  # --no-resume starts over
    assert json.loads(path.read_text())["target_macs"] == 20.0
    # an input an earlier stage produced (the chosen subnet) starts the stage over instead
    assert check_inputs(path, {"target_macs": 20.0, "arch": "4_4"}, resume=True, derived=("arch",))
    assert not check_inputs(path, {"target_macs": 20.0, "arch": "2_2"}, resume=True, derived=("arch",))
    assert json.loads(path.read_text())["arch"] == "2_2"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="inputs.json"):
        check_inputs(path, {}, resume=True)
    a, b = (
        create_generator("resnet", base_width=4, num_blocks=3),
        create_generator("resnet", base_width=4, num_blocks=3),
    )
    assert weights_digest(a) == weights_digest(a) != weights_digest(b)


def test_the_target_comes_from_the_command_line_else_the_recipe():
    kinds = ("macs", "ratio")
    assert resolve_target("m", kinds, MethodOptions(ratio=0.25), {"macs": 5.0}, 1000).macs == 250
    assert resolve_target("m", kinds, MethodOptions(), {"macs": 5.0, "ratio": None}, 1000).to_dict() == {
        "given": "macs",
        "value": 5.0,
        "macs": 5.0,
    }
    assert resolve_target("m", kinds, MethodOptions(), {}, 1000).kind is None
    with pytest.raises(ConfigError, match="MACs target"):
        resolve_target("m", kinds, MethodOptions(budget_latency_ms=3.0), {}, 1000)
    with pytest.raises(ConfigError, match="no target"):
        resolve_target("m", kinds, MethodOptions(), {}, 1000, required=True)
    with pytest.raises(ConfigError, match="ratio"):
        resolve_target("m", kinds, MethodOptions(ratio=1.5), {}, 1000)
    latency = resolve_target("m", ("macs", "latency_ms"), MethodOptions(budget_latency_ms=3.0), {}, 1000)
    assert latency.kind == "latency_ms" and latency.macs is None


def test_one_set_of_blocks_and_one_version_rule_for_every_recipe():
    # the teacher recipe's data block and a method's share one base block and its checks
    for cls in (DataConfig, TrainDataConfig):
        with pytest.raises(ConfigError, match="data.crop_size"):
            cls(crop_size=0)
    with pytest.raises(ConfigError, match="data.holdout"):
        DataConfig(holdout=-1)
    check_version(1)
    for bad in (0, 2, True):
        with pytest.raises(ConfigError, match="version"):
            check_version(bad)
    assert StageConfig(epochs=1).enabled and not StageConfig(epochs=1, max_steps=0).enabled
