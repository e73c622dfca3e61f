"""The benchmark's quality-gate verdicts and the per-inference floor."""

import json
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from gancompress.bench.benchmark import (
    BenchmarkOptions,
    as_verdict,
    floor_generator,
    minimal_quality_gate,
    run_benchmark,
    summary_gate,
)
from gancompress.errors import ConfigError
from gancompress.export.saved import save_generator
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator, list_generators


class Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


def _inputs(n=4, size=16):
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size) * 2 - 1


def test_minimal_gate_fails_non_finite_constant_and_worse_than_copying():
    x = _inputs()
    teacher = lambda t: (0.9 * t).clamp(-1, 1)  # noqa: E731 - a teacher close to the identity

    nan = minimal_quality_gate(lambda t: t * float("nan"), teacher, x)
    assert not nan["passed"] and "non-finite" in nan["reasons"][0]

    flat = minimal_quality_gate(Constant(0.1), teacher, x)
    assert not flat["passed"] and any("constant output" in r for r in flat["reasons"])

    noise = minimal_quality_gate(lambda t: torch.rand_like(t) * 2 - 1, teacher, x)
    assert not noise["passed"] and any("copying the input" in r for r in noise["reasons"])
    assert noise["scores"]["psnr_vs_teacher"] < noise["scores"]["psnr_copy_vs_teacher"]

    good = minimal_quality_gate(lambda t: (0.88 * t).clamp(-1, 1), teacher, x, targets=x)
    assert good["passed"] and good["reasons"] == [] and good["scores"]["psnr_vs_teacher"] > 30
    assert good["scores"]["psnr_vs_target"] is not None and good["images"] == 4


def test_minimal_gate_of_the_teacher_itself_skips_the_teacher_comparison():
    x = _inputs()
    teacher = create_generator("resnet", base_width=4).eval()
    verdict = minimal_quality_gate(teacher, teacher, x)
    assert "psnr_vs_teacher" not in verdict["scores"]
    json.dumps(verdict, allow_nan=False)  # no infinite PSNR written into results.json


def test_summary_gate_beside_or_above_the_generator(tmp_path):
    run = tmp_path / "run"
    (run / "generator").mkdir(parents=True)
    assert summary_gate(run / "generator") is None
    (run / "summary.json").write_text(json.dumps({"method": "x"}))
    assert summary_gate(run / "generator") is None  # a summary without a verdict
    gate = {"passed": False, "reasons": ["constant output"], "scores": {"psnr_vs_teacher": 9.0}}
    (run / "summary.json").write_text(json.dumps({"method": "x", "quality_gate": gate}))
    got = summary_gate(run / "generator")
    assert got["passed"] is False and got["reasons"] == ["constant output"]
    assert got["source"] == str(run / "summary.json")
    (run / "summary.json").write_text(json.dumps({"quality_gate": {"passed": "no"}}))
    with pytest.raises(ConfigError, match=r"summary.json: quality_gate"):
        summary_gate(run / "generator")
    (run / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match="summary.json"):
        summary_gate(run / "generator")


@dataclass
class GateResult:
    """Shaped like a gate function's result object."""

    passed: bool
    reasons: list = field(default_factory=list)
    scores: dict = field(default_factory=dict)


def test_verdicts_from_dicts_and_result_objects():
    assert as_verdict(GateResult(False, ["constant output"]))["reasons"] == ["constant output"]
    assert as_verdict({"passed": True, "reasons": "fine"})["reasons"] == ["fine"]
    with pytest.raises(ConfigError, match=r"gates\['x'\] must be an object with a boolean 'passed'"):
        as_verdict({"passed": 1}, "gates['x']")


@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=pytest.mark.slow) if f == "spade" else f for f in list_generators()]
)
def test_floor_network_of_every_family(family):
    """Every registered family has a width-1 floor network of the same depth that runs."""
    net = create_generator(family, base_width=4).eval()
    floor = floor_generator(net)
    assert type(floor) is type(net) and set(floor.arch.widths) == {1}
    assert len(floor.arch.widths) == len(net.arch.widths)
    # SPADE's label MLP has a fixed width, so its floor keeps those MACs; the report states the share
    share = profile_generator(floor).macs_paper / profile_generator(net).macs_paper
    assert share < (0.8 if family == "spade" else 0.25)
    from gancompress.export.rewrite import deploy_module, example_inputs

    with torch.no_grad():  # what every runtime executes
        out = deploy_module(floor)(*example_inputs(floor))  # at the family's own default size
    out = out[0] if isinstance(out, (tuple, list)) else out
    assert torch.isfinite(out).all()


def test_benchmark_shows_a_recorded_failure_as_failed(tmp_path, fonts32):
    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=4).eval()
    save_generator(teacher, tmp_path / "teacher")
    run = tmp_path / "slim"
    save_generator(
        teacher.extract_subnet("2_2_2_2_2_2_2_2"), run / "generator", extra={"method": "gan-slimming"}
    )
    verdict = {"passed": False, "reasons": ["constant output (pixel standard deviation 0.0001 < 0.01)"]}
    (run / "summary.json").write_text(json.dumps({"method": "gan-slimming", "quality_gate": verdict}))
    options = BenchmarkOptions(
        runtimes=("eager",),
        threads=1,
        warmup=0,
        repeats=1,
        extractors=(),
        max_images=4,
        calibration=2,
        num_samples=2,
        gate_images=4,
    )
    save_generator(teacher.extract_subnet("2_2_4_2_2_2_2_2"), tmp_path / "given", extra={"method": "coronet"})
    results = run_benchmark(
        tmp_path / "teacher",
        {"slim": run / "generator", "given": tmp_path / "given"},
        fonts32,
        tmp_path / "bench",
        options,
        failed_models={"coronet": "ConfigError: budget too small"},
        gates={"given": GateResult(False, ["worse than copying the input"])},  # a verdict in hand
    )
    rows = {r["name"]: r for r in results["rows"]}
    assert rows["teacher"]["quality_gate"]["passed"] is True
    assert rows["teacher"]["quality_gate"]["source"] == "the benchmark's minimal check"
    slim = rows["slim"]["quality_gate"]
    assert slim["passed"] is False and slim["source"] == str(run / "summary.json")
    assert rows["slim int8"]["quality_gate"]["passed"] is False  # its fp32 model failed
    given = rows["given"]["quality_gate"]
    assert given == {
        "passed": False,
        "reasons": ["worse than copying the input"],
        "scores": {},
        "source": "given to run_benchmark",
    }
    assert results["failed_models"] == {"coronet": "ConfigError: budget too small"}
    floor = results["floor"]
    assert set(floor["arch"].split("_")) == {"1"} and floor["latency_ms"]["eager"] > 0
    assert floor["macs_paper"] < rows["slim"]["macs_paper"]
    md = (tmp_path / "bench" / "results.md").read_text()
    assert "| slim | gan-slimming | FAILED: constant output |" in md
    assert "**GAN Slimming** (`slim`): **FAILS** the quality gate" in md
    assert "coronet: no model to measure" in md and "Per-inference floor" in md
    page = (tmp_path / "bench" / "report.html").read_text()
    assert '<tr class="failed">' in page
