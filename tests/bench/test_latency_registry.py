"""The runtime registry: every installed runtime measures a tiny generator with the same protocol."""

import pytest
import torch

from gancompress.bench import latency
from gancompress.bench.latency import (
    DEFAULT_THREADS,
    RUNTIMES,
    Runtime,
    get_runtime,
    list_runtimes,
    measure_generator,
    register_runtime,
    time_calls,
    under_load,
)
from gancompress.errors import ConfigError
from gancompress.models import create_generator

PROTOCOL = (
    "name",
    "runtime",
    "runtime_version",
    "batch",
    "input_shape",
    "dtype",
    "threads",
    "device",
    "cpu",
    "torch",
    "python",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "cpu_median_ms",
    "repeats",
    "warmup",
    "load_avg",
    "under_load",
    "available_cpus",
    "rewrites",
    "error",
)
# slow to build on a loaded 2-core machine (a few minutes each): measured in the slow set only
SLOW = {"compile", "executorch-fp32", "executorch-int8"}


@pytest.fixture(scope="module")
def calib(fonts32):
    from gancompress.export.int8 import calibration_inputs

    return calibration_inputs(
        create_generator("resnet", base_width=4, num_blocks=3), fonts32, count=2, size=32
    )


def _params():
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in list_runtimes(device="cpu")]


@pytest.mark.parametrize("runtime", _params())
def test_every_installed_cpu_runtime_returns_a_protocol_row(runtime, tmp_path, calib):
    spec = get_runtime(runtime)
    if spec.version() is None:
        pytest.skip(f"{runtime} is not installed")
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    (row,) = measure_generator(
        g,
        name="tiny",
        runtimes=(runtime,),
        size=(32, 32),
        warmup=1,
        repeats=3,
        calibration=calib,
        workdir=tmp_path,
    )
    assert all(k in row for k in PROTOCOL), sorted(set(PROTOCOL) - set(row))
    assert row["error"] is None, row["error"]
    assert row["threads"] == DEFAULT_THREADS == 1 and row["repeats"] == 3 and row["warmup"] == 1
    assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"] and row["dtype"] == spec.dtype
    assert row["runtime_version"] and row["available_cpus"] >= 1
    assert row["under_load"] == (row["load_avg"] > row["available_cpus"] - 1)


def test_registry_lists_runtimes_in_order_and_rejects_duplicates():
    assert RUNTIMES[:3] == ("eager", "channels_last", "compile") and set(latency.INT8_RUNTIMES) == {
        "ort-int8",
        "openvino-int8",
        "executorch-int8",
    }
    assert "executorch-fp32" in RUNTIMES and "ncnn-fp32" in RUNTIMES
    assert set(list_runtimes(device="cuda")) >= {"eager", "eager-fp16", "cuda-graph", "ort-cuda"}
    assert "ort-fp32" not in list_runtimes(device="cuda") and "eager-fp16" not in list_runtimes(device="cpu")
    assert list_runtimes("ort-*") == ["ort-fp32", "ort-int8", "ort-cuda"]
    with pytest.raises(ConfigError, match="registered twice"):
        register_runtime(get_runtime("eager"))
    with pytest.raises(ConfigError, match="known"):
        get_runtime("tensorrt")


def test_a_registered_runtime_is_measured_like_the_others(monkeypatch, tmp_path):
    calls = []

    def build(ctx):
        assert ctx.threads == 1 and ctx.inputs[0].shape == (1, 3, 32, 32) and ctx.workdir == tmp_path
        ctx.extra["note"] = "custom"
        return lambda: calls.append(1)

    spec = Runtime("custom-test", kind="torch", build=build, version=lambda: "1.0")
    monkeypatch.setattr(latency, "_ORDER", [*latency._ORDER])
    monkeypatch.setattr(latency.RUNTIME_REGISTRY, "_entries", dict(latency.RUNTIME_REGISTRY._entries))
    register_runtime(spec)
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    (row,) = measure_generator(
        g, runtimes=("custom-test",), size=(32, 32), warmup=2, repeats=4, workdir=tmp_path
    )
    assert row["error"] is None and len(calls) == 6 and row["extra"] == {"note": "custom"}
    assert row["runtime_version"] == "1.0" and "custom-test" in list_runtimes()


def test_skipped_rows_name_the_reason():
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    rows = measure_generator(g, runtimes=("eager-fp16", "cuda-graph", "ncnn-fp32"), size=(32, 32), batch=2)
    assert rows[0]["error"] == "skipped: eager-fp16 runs on cuda, not cpu"
    assert rows[1]["error"].startswith("skipped: cuda-graph runs on cuda")
    assert rows[2]["error"].startswith("skipped: ncnn")  # not installed, or batch 2 where ncnn runs 1
    assert all(r["median_ms"] is None for r in rows)


def test_cuda_rows_are_skipped_without_a_gpu_and_cpu_rows_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    rows = measure_generator(g, runtimes=("eager", "ort-fp32"), size=(32, 32), device="cuda", repeats=1)
    assert rows[0]["error"] == "skipped: eager: no CUDA device here"
    assert rows[1]["error"] == "skipped: ort-fp32 runs on cpu, not cuda"


def test_cuda_timing_uses_events_and_synchronises(monkeypatch):
    """The CUDA clock path, driven by stand-ins for the events (no GPU needed)."""
    log = []

    class Event:
        def __init__(self, enable_timing):
            assert enable_timing
            self.t = None

        def record(self):
            log.append("record")
            self.t = len(log)

        def elapsed_time(self, end):
            return float(end.t - self.t)

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append("sync"))
    stats = time_calls(lambda: log.append("call"), warmup=1, repeats=2, device="cuda")
    assert log == ["call", "sync"] + ["record", "call", "record", "sync"] * 2
    assert stats.median_ms == 2.0 and stats.cpu_median_ms is None


def test_rows_under_load_are_marked():
    assert under_load(3.0, threads=1, cpus=2) is True and under_load(1.0, threads=1, cpus=2) is False
    assert under_load(None, threads=1, cpus=2) is None and under_load(0.5, threads=2, cpus=2) is True
    row = dict(
        name="m",
        runtime="eager",
        threads=1,
        input_shape=[1, 3, 8, 8],
        median_ms=1.0,
        p10_ms=1.0,
        p90_ms=1.0,
        cpu_median_ms=1.0,
        load_avg=7.5,
        under_load=True,
        error=None,
    )
    assert "7.50 (measured under load)" in latency.format_table([row])
    assert "threads 1 (the benchmark default)" in latency.environment_line(1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("runtime", ["eager", "eager-fp16", "eager-bf16", "cuda-graph", "ort-cuda"])
def test_cuda_runtimes_on_a_gpu(runtime):
    if get_runtime(runtime).version() is None:
        pytest.skip(f"{runtime} is not installed")
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    (row,) = measure_generator(g, runtimes=(runtime,), size=(32, 32), device="cuda", warmup=2, repeats=3)
    assert row["error"] is None and row["median_ms"] > 0 and row["device"] == "cuda"
