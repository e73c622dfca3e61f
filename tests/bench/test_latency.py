"""The latency harness: statistics, call counting, rows that record their setting, failures kept per row."""

import time

import pytest
import torch

from gancompress.bench import latency
from gancompress.bench.latency import format_table, measure_generator, summarize, time_calls
from gancompress.errors import ConfigError
from gancompress.models import create_generator

REQUIRED = (
    "name",
    "runtime",
    "batch",
    "input_shape",
    "dtype",
    "threads",
    "device",
    "cpu",
    "torch",
    "onnxruntime",
    "python",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "repeats",
    "warmup",
    "load_avg",
)


def test_summarize_percentiles():
    s = summarize([float(v) for v in range(10, 0, -1)], warmup=2)
    assert s.median_ms == 5.5 and s.min_ms == 1.0 and s.repeats == 10 and s.warmup == 2
    assert s.p10_ms == pytest.approx(1.9) and s.p90_ms == pytest.approx(9.1)
    with pytest.raises(ConfigError):
        summarize([])


def test_time_calls_runs_warmup_then_times_each_call():
    calls = []
    stats = time_calls(lambda: calls.append(1), warmup=3, repeats=7)
    assert len(calls) == 10 and stats.repeats == 7 and stats.warmup == 3
    assert 0 <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    with pytest.raises(ConfigError):
        time_calls(lambda: None, repeats=0)


def test_rows_record_the_setting_and_restore_threads(tmp_path):
    g = create_generator("resnet", base_width=4, separable=True).eval()
    before = torch.get_num_threads()
    rows = measure_generator(
        g,
        name="tiny",
        runtimes=("eager", "channels_last", "ort-fp32"),
        size=(32, 32),
        batch=2,
        threads=1,
        warmup=1,
        repeats=3,
        workdir=tmp_path,
    )
    assert torch.get_num_threads() == before
    assert [r["runtime"] for r in rows] == ["eager", "channels_last", "ort-fp32"]
    for r in rows:
        assert all(k in r for k in REQUIRED), r
        assert r["error"] is None and r["median_ms"] > 0 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["threads"] == 1 and r["batch"] == 2 and r["input_shape"] == [2, 3, 32, 32]
        assert r["dtype"] == "float32" and r["repeats"] == 3 and r["torch"] == torch.__version__
        assert r["cpu_median_ms"] > 0
    assert rows[2]["extra"]["ort_optimization"] == "all" and (tmp_path / "fp32.onnx").is_file()


def test_a_failing_runtime_gives_an_error_row_not_an_exception(tmp_path, monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    g = create_generator("resnet", base_width=4).eval()
    rows = measure_generator(
        g,
        runtimes=("compile", "ort-int8", "eager"),
        size=(32, 32),
        threads=1,
        warmup=0,
        repeats=1,
        workdir=tmp_path,
    )
    assert "no C++ compiler" in rows[0]["error"] and rows[0]["median_ms"] is None
    assert "calibration" in rows[1]["error"] and rows[1]["dtype"] == "int8"
    assert rows[2]["error"] is None and rows[2]["median_ms"] > 0
    table = format_table(rows)
    assert "failed: RuntimeError: no C++ compiler here" in table


def test_int8_runtime_with_real_calibration(tmp_path, fonts32):
    from gancompress.export.int8 import calibration_inputs

    g = create_generator("resnet", base_width=4).eval()
    calib = calibration_inputs(g, fonts32, count=4, size=32)
    (row,) = measure_generator(
        g, runtimes=("ort-int8",), size=(32, 32), warmup=0, repeats=2, calibration=calib, workdir=tmp_path
    )
    assert row["error"] is None and row["dtype"] == "int8" and (tmp_path / "int8.onnx").is_file()


def test_bad_arguments():
    g = create_generator("resnet", base_width=4)
    with pytest.raises(ConfigError, match="known"):
        measure_generator(g, runtimes=("tensorrt",))
    with pytest.raises(ConfigError, match="batch"):
        measure_generator(g, runtimes=("eager",), batch=0)
    with pytest.raises(ConfigError, match="threads"):
        measure_generator(g, runtimes=("eager",), threads=0)


def test_speedup_column_and_device_info():
    rows = [
        dict(
            name=n,
            runtime="eager",
            threads=1,
            input_shape=[1, 3, 8, 8],
            median_ms=m,
            p10_ms=m,
            p90_ms=m,
            cpu_median_ms=m / 2,
            load_avg=0.5,
            error=None,
        )
        for n, m in (("teacher", 100.0), ("student", 25.0))
    ]
    table = format_table(rows, baseline="teacher")
    assert "| student | eager | 1 | 1×3×8×8 | 25.0 | 25.0–25.0 | 12.5 | 0.50 | 4.0× | 4.0× |" in table
    info = latency.device_info()
    assert info["cpu"] and info["torch"] == torch.__version__ and info["python"]


def test_openvino_rows_get_their_runtimes_rewrites_or_share_given_ones(tmp_path, fonts32):
    pytest.importorskip("openvino")
    from gancompress.export.int8 import calibration_inputs
    from gancompress.export.rewrite import RUNTIME_REWRITES

    g = create_generator("resnet", base_width=4, separable=True).eval()
    calib = iter(calibration_inputs(g, fonts32, count=4, size=32))  # a one-pass iterable calibrates both
    runtimes = ("ort-int8", "openvino-fp32", "openvino-int8")
    rows = measure_generator(
        g, runtimes=runtimes, size=(32, 32), warmup=1, repeats=2, calibration=calib, workdir=tmp_path / "a"
    )
    assert [r["error"] for r in rows] == [None, None, None]
    assert [r["dtype"] for r in rows] == ["int8", "float32", "int8"]
    assert rows[1]["openvino"] and rows[1]["extra"]["openvino_precision"] == "f32"
    assert rows[2]["median_ms"] > 0 and rows[2]["cpu_median_ms"] > 0
    assert rows[0]["rewrites"] == ",".join(RUNTIME_REWRITES["onnxruntime"])
    assert rows[1]["rewrites"] == rows[2]["rewrites"] == ",".join(RUNTIME_REWRITES["openvino"])
    names = sorted(p.name for p in (tmp_path / "a").glob("*.onnx"))
    assert names == ["fp32.onnx", "fp32.openvino.onnx", "int8.onnx", "int8.openvino.onnx"]
    # rewrites given explicitly: every runtime runs the same graphs
    rows = measure_generator(
        g,
        runtimes=runtimes,
        size=(32, 32),
        warmup=0,
        repeats=1,
        rewrites=("fold_norm_bias",),
        calibration=calibration_inputs(g, fonts32, count=4, size=32),
        workdir=tmp_path / "b",
    )
    assert {r["rewrites"] for r in rows} == {"fold_norm_bias"} and all(r["error"] is None for r in rows)
    assert sorted(p.name for p in (tmp_path / "b").glob("*.onnx")) == ["fp32.onnx", "int8.onnx"]


def test_openvino_rows_are_skipped_with_a_note_when_not_installed(tmp_path, monkeypatch):
    from gancompress.export import openvino

    monkeypatch.setattr(openvino, "openvino_version", lambda: None)
    g = create_generator("resnet", base_width=4).eval()
    rows = measure_generator(
        g, runtimes=("openvino-fp32", "eager"), size=(32, 32), warmup=0, repeats=1, workdir=tmp_path
    )
    assert rows[0]["error"].startswith("skipped: OpenVINO is not installed") and rows[0]["median_ms"] is None
    assert rows[1]["error"] is None
    table = format_table(rows)
    assert "| skipped: OpenVINO is not installed" in table and "failed" not in table


def test_min_time_keeps_timing_past_repeats():
    calls = []
    stats = time_calls(lambda: (calls.append(1), time.sleep(0.002)), warmup=0, repeats=2, min_time_s=0.05)
    assert stats.repeats == len(calls) and stats.repeats > 2  # ~25 calls of 2 ms fill 50 ms
    with pytest.raises(ConfigError, match="min_time_s"):
        time_calls(lambda: None, min_time_s=-1)
