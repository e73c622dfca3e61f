"""The side-by-side benchmark: results.json rows, the markdown table, plots and the HTML report."""

import json

import pytest
import torch

from gancompress.bench.benchmark import BenchmarkOptions, run_benchmark
from gancompress.bench.commands import parse_students
from gancompress.cli import main
from gancompress.errors import ConfigError
from gancompress.export.saved import save_generator
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator

ROW_KEYS = ("name", "method", "macs_paper", "macs_true", "params", "size_bytes", "latency_ms", "quality")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=4).eval()
    student = teacher.extract_subnet("2_2_4_2_2_2_2_2")
    save_generator(teacher, root / "teacher")
    save_generator(student, root / "student", extra={"method": "hand-pruned"})
    return root


def test_benchmark_rows_and_report(tmp_path, saved, fonts32):
    options = BenchmarkOptions(
        runtimes=("eager", "ort-fp32"),
        threads=1,
        warmup=0,
        repeats=2,
        extractors=(),
        max_images=8,
        calibration=4,
        num_samples=3,
    )
    results = run_benchmark(saved / "teacher", {"small": saved / "student"}, fonts32, tmp_path, options)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(results["rows"]))
    rows = {r["name"]: r for r in on_disk["rows"]}
    assert list(rows) == ["teacher", "teacher int8", "small", "small int8"]
    for r in rows.values():
        assert all(k in r for k in ROW_KEYS)
        assert set(r["quality"]) == {"psnr", "ssim", "l1"}
    teacher, small = rows["teacher"], rows["small"]
    assert teacher["method"] == "teacher" and small["method"] == "hand-pruned"
    assert (
        rows["small int8"]["method"] == "hand-pruned + int8-ptq" and rows["small int8"]["precision"] == "int8"
    )
    # MACs and params are the profiler's, at the latency input size (the dataset's 32 px)
    prof = profile_generator(create_generator("resnet", base_width=4, arch="2_2_4_2_2_2_2_2"), (32, 32))
    assert (small["macs_paper"], small["macs_true"], small["params"]) == (
        prof.macs_paper,
        prof.macs_true,
        prof.params,
    )
    assert teacher["macs_paper"] > small["macs_paper"] and teacher["params"] > small["params"]
    assert set(teacher["latency_ms"]) == {"eager", "ort-fp32"} and set(
        rows["teacher int8"]["latency_ms"]
    ) == {"ort-int8"}
    assert all(v > 0 for r in rows.values() for v in r["latency_ms"].values())
    assert small["size_bytes"] == (saved / "student" / "model.safetensors").stat().st_size
    assert rows["teacher int8"]["quality"]["psnr"] == pytest.approx(teacher["quality"]["psnr"], abs=3.0)
    for name in ("results.md", "quality_vs_macs.png", "latency_vs_macs.png", "samples.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    md = (tmp_path / "results.md").read_text()
    assert md.count("\n| ") == 5 and "| small int8 | hand-pruned + int8-ptq |" in md
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "small int8" in page and "<table>" in page
    assert results["environment"]["threads"] == 1 and results["environment"]["torch"] == torch.__version__


def test_benchmark_cli(tmp_path, saved, fonts32, capsys):
    code = main(
        [
            "benchmark",
            "--teacher",
            str(saved / "teacher"),
            "--student",
            f"s={saved / 'student'}",
            "--data",
            str(fonts32),
            "--out",
            str(tmp_path / "b"),
            "--runtimes",
            "ort-fp32",
            "--quick",
            "--extractors",
            "--no-int8",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| s | hand-pruned |" in out and "report.html" in out
    rows = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["teacher", "s"]


def test_bad_student_specs(tmp_path, saved):
    with pytest.raises(ConfigError, match="NAME=DIR"):
        parse_students(["nonameequals"])
    with pytest.raises(ConfigError, match="twice"):
        parse_students([f"a={saved / 'student'}", f"a={saved / 'student'}"])
    with pytest.raises(ConfigError, match="no such"):
        parse_students([f"a={tmp_path / 'missing'}"])
    assert (
        main(
            [
                "benchmark",
                "--teacher",
                str(tmp_path / "none"),
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    with pytest.raises(ConfigError, match="runtimes"):
        BenchmarkOptions(runtimes=("tflite",))
