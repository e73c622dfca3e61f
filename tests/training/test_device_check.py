"""bench/device_check.py runs end to end at tiny size on the CPU and writes every section's figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "device_check.py"


@pytest.fixture(scope="module")
def device_check():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_device_check_runs_tiny_on_cpu_and_writes_json(device_check, tmp_path):
    args = [
        "--device",
        "cpu",
        "--tiny",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        "--methods",
        "fast-gan-compression",
    ]
    assert device_check.main(args) == 0
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["environment"]["device"] == "cpu" and report["tiny"] is True
    sections = report["sections"]
    assert set(sections) == {"compress", "teacher_training", "supernet_training", "latency"}
    assert all(s["status"] == "ok" for s in sections.values()), sections
    compress = sections["compress"]["result"]
    assert [(r["method"], r["precision"], r["status"]) for r in compress] == [
        ("fast-gan-compression", "fp32", "ok"),
        ("fast-gan-compression", "bf16", "ok"),
    ]
    assert "differs_from_fp32" in compress[1]
    for name in ("teacher_training", "supernet_training"):
        rows = sections[name]["result"]["rows"]
        assert [r["precision"] for r in rows] == ["fp32", "bf16"] and all(r["images_per_s"] > 0 for r in rows)
        assert sections[name]["result"]["bf16_over_fp32"] > 0
    latency = sections["latency"]["result"]
    assert {r["model"] for r in latency} == {"teacher", "subnet 16_16_32_16_32_32_16_16"}
    assert all(r["median_ms"] > 0 for r in latency)


def test_device_check_refuses_cuda_without_a_gpu(device_check, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert device_check.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
