"""Latency of a generator in real runtimes, measured the same way everywhere.

Runtimes (:data:`RUNTIMES`):

``eager``          PyTorch eager on the deploy form (fixed widths, exact rewrites).
``channels_last``  the same, weights and input in channels-last (NHWC) memory layout.
``compile``        ``torch.compile`` (Inductor, with weight freezing) of the channels-last deploy form.
``ort-fp32``       ONNX Runtime on the fp32 graph of :func:`gancompress.export.onnx.export_onnx`.
``ort-int8``       ONNX Runtime on the int8 QDQ graph of :func:`gancompress.export.int8.quantize_onnx_int8`.
``openvino-fp32``  OpenVINO's CPU plugin on an fp32 graph, compiled for the measured input shape
                   (optional extra ``gancompress[openvino]``; rows say "skipped" without it).
``openvino-int8``  OpenVINO on the int8 QDQ graph (the same quantiser, OpenVINO's rewrites).

Every measurement sets its threads explicitly (``torch.set_num_threads`` / ORT's
``intra_op_num_threads`` / OpenVINO's ``INFERENCE_NUM_THREADS``), runs ``warmup`` calls, then
``repeats`` timed calls (more if ``min_time_s`` asks for a longer window), each timed on its own with
:func:`time.perf_counter` (CUDA events on a GPU), and reports the median with the 10th and 90th
percentiles, and the median process CPU time. A runtime that fails (``torch.compile`` without a
compiler, say) gives a row with ``error`` set instead of stopping the others. Each row records the
device, the versions, the threads, batch, input shape, dtype, rewrites and the load average while it
ran.

Example:
    >>> rows = measure_generator(load_generator("runs/demo/teacher"), runtimes=("eager", "ort-fp32"),
    ...                          size=(256, 256), threads=2)
    >>> rows[0]["median_ms"]
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..models import Generator

RUNTIMES = ("eager", "channels_last", "compile", "ort-fp32", "ort-int8", "openvino-fp32", "openvino-int8")
TORCH_RUNTIMES = ("eager", "channels_last", "compile")
ORT_RUNTIMES = ("ort-fp32", "ort-int8")
OPENVINO_RUNTIMES = ("openvino-fp32", "openvino-int8")
INT8_RUNTIMES = ("ort-int8", "openvino-int8")


@dataclass
class LatencyStats:
    """Summary of ``repeats`` separately timed calls, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    repeats: int
    warmup: int
    cpu_median_ms: float | None = None  # process CPU time per call (all threads), median


def _percentile(sorted_values: list[float], q: float) -> float:
    # linear interpolation between closest ranks (numpy's default), without numpy
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(
    times_ms: Sequence[float], warmup: int = 0, cpu_times_ms: Sequence[float] | None = None
) -> LatencyStats:
    """Median, p10, p90, mean and min of per-call times (milliseconds), and the median CPU time."""
    if not times_ms:
        raise ConfigError("no timed calls to summarise")
    values = sorted(float(t) for t in times_ms)
    return LatencyStats(
        median_ms=statistics.median(values),
        p10_ms=_percentile(values, 0.10),
        p90_ms=_percentile(values, 0.90),
        mean_ms=statistics.fmean(values),
        min_ms=values[0],
        repeats=len(values),
        warmup=warmup,
        cpu_median_ms=statistics.median(cpu_times_ms) if cpu_times_ms else None,
    )


def time_calls(
    fn: Callable[[], object],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str = "cpu",
    min_time_s: float = 0.0,
) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times, each call timed on its own.

    With ``min_time_s``, timed calls go on past ``repeats`` until that many seconds have passed: a
    fast model then samples a machine shared with other jobs over as long a window as a slow one,
    rather than a fraction of a second that one burst of other work can fill.

    On a CUDA device each call is bracketed by CUDA events and synchronised, so the time is the
    GPU's, not the launch's.

    Example:
        >>> time_calls(lambda: model(x), warmup=3, repeats=20).median_ms
    """
    if warmup < 0 or repeats < 1 or min_time_s < 0:
        raise ConfigError(
            f"warmup and min_time_s must be >= 0 and repeats >= 1, got {warmup}, {min_time_s} and {repeats}"
        )
    cuda = str(device).startswith("cuda")
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    times: list[float] = []
    cpu_times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start_all < min_time_s:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            # CPU time beside wall time: on a shared machine, other processes stretch the wall time
            # of a call but not the CPU time it used, which still shows what the call costs
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
            cpu_times.append((time.process_time() - c0) * 1000.0)
    return summarize(times, warmup, cpu_times)


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_info(device: str = "cpu") -> dict[str, Any]:
    """What a latency figure depends on: processor or GPU, core count and library versions."""
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover - a dependency, but latency of torch runtimes needs none
        info["onnxruntime"] = None
    from ..export.openvino import openvino_version

    info["openvino"] = openvino_version()
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> float | None:
    """The 1-minute load average (other processes competing for the cores), where the OS has one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return None


@dataclass
class LatencyRow:
    """One measured (model, runtime) pair with everything needed to judge the figure."""

    name: str
    runtime: str
    batch: int
    input_shape: list[int]
    dtype: str
    threads: int
    device: str
    cpu: str
    torch: str
    onnxruntime: str | None
    python: str
    openvino: str | None = None
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    cpu_median_ms: float | None = None
    repeats: int = 0
    warmup: int = 0
    load_avg: float | None = None
    rewrites: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run a block with ``torch.set_num_threads(threads)``, restoring the previous count after."""
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _torch_callable(
    generator: Generator, runtime: str, inputs: tuple[torch.Tensor, ...], rewrites: Sequence[str], device: str
) -> Callable[[], object]:
    from ..export.rewrite import deploy

    module = deploy(generator, rewrites).to(device)
    inputs = tuple(t.to(device) for t in inputs)
    if runtime in ("channels_last", "compile"):
        module = module.to(memory_format=torch.channels_last)
        inputs = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs)
    if runtime == "compile":
        import torch._inductor.config as inductor_config

        # freezing folds the weights into the graph as constants, so Inductor can pre-pack them for
        # oneDNN and fuse conv + bias + activation: the deploy setting of a fixed network
        with inductor_config.patch(freezing=True):
            module = torch.compile(module, dynamic=False)
            with torch.no_grad():
                module(*inputs)  # compile now, so a failure is caught here and not in the timing
    run = module

    def call() -> object:
        with torch.no_grad():
            return run(*inputs)

    return call


def _ort_callable(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...], threads: int, optimization: str):
    import numpy as np

    from ..export.onnx import ort_session

    session = ort_session(path, threads=threads, optimization=optimization)
    names = [i.name for i in session.get_inputs()]
    feed = {
        n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for n, t in zip(names, inputs)
    }
    return lambda: session.run(None, feed)


def _openvino_callable(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...], threads: int):
    import numpy as np

    from ..export.openvino import openvino_model

    compiled = openvino_model(path, threads=threads, shapes=[list(t.shape) for t in inputs])
    request = compiled.create_infer_request()
    feed = {i: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for i, t in enumerate(inputs)}
    return lambda: request.infer(feed)


def measure_generator(
    generator: Generator,
    *,
    name: str = "model",
    runtimes: Iterable[str] = ("eager", "ort-fp32"),
    size: tuple[int, int] | None = None,
    batch: int = 1,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 20,
    min_time_s: float = 0.0,
    device: str = "cpu",
    rewrites: Sequence[str] | None = None,
    onnx_fp32: str | os.PathLike | None = None,
    onnx_int8: str | os.PathLike | None = None,
    calibration: Iterable[Any] | None = None,
    ort_optimization: str = "all",
    workdir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Latency rows (dicts) of ``generator`` in each of ``runtimes`` on one deterministic input.

    ONNX files are exported into ``workdir`` (a temporary folder by default) unless given; the
    int8 graph needs ``onnx_int8`` or ``calibration`` inputs (real images, see
    :func:`gancompress.export.int8.calibration_inputs`), otherwise its row carries an error.
    ``rewrites=None`` gives each runtime the rewrites measured fastest for it
    (:data:`gancompress.export.rewrite.RUNTIME_REWRITES`): OpenVINO then reads its own graphs
    (``fp32.openvino.onnx``, ``int8.openvino.onnx``); given rewrites apply to every runtime, and given
    ``onnx_fp32`` / ``onnx_int8`` files serve both ONNX runtimes. OpenVINO rows are skipped (``error``
    starting "skipped") when the optional ``openvino`` package is not installed.

    Example:
        >>> measure_generator(g, name="student", runtimes=RUNTIMES, size=(256, 256), threads=2,
        ...                   calibration=calibration_inputs(g, data_root))
    """
    from ..export.rewrite import RUNTIME_REWRITES, example_inputs

    runtimes = list(runtimes)
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ConfigError(f"unknown runtime(s) {unknown}; known: {', '.join(RUNTIMES)}")
    if batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}")
    fixed_rewrites = None if rewrites is None else tuple(rewrites)
    if calibration is not None:
        calibration = list(calibration)  # may calibrate two int8 graphs (ORT's and OpenVINO's)
    inputs = example_inputs(generator, size, batch)
    info = device_info(device)
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gancompress-latency-"))
        workdir = Path(workdir)
        stack.enter_context(torch_threads(threads))
        files: dict[str, Path | None] = {"fp32": onnx_fp32, "int8": onnx_int8}
        for runtime in runtimes:
            kind = _runtime_kind(runtime)
            rw = fixed_rewrites if fixed_rewrites is not None else RUNTIME_REWRITES[kind]
            given_file = onnx_int8 if runtime in INT8_RUNTIMES and onnx_int8 is not None else onnx_fp32
            given = kind != "torch" and given_file is not None
            if given:
                from ..export.onnx import onnx_metadata

                with contextlib.suppress(Exception):  # a file from elsewhere may carry no metadata
                    rw = tuple(r for r in onnx_metadata(given_file).get("rewrites", "").split(",") if r)
            row = LatencyRow(
                name=name,
                runtime=runtime,
                batch=batch,
                input_shape=list(inputs[0].shape),
                dtype="int8" if runtime in INT8_RUNTIMES else "float32",
                threads=threads,
                device=str(device),
                cpu=info["cpu"],
                torch=info["torch"],
                onnxruntime=info["onnxruntime"],
                python=info["python"],
                openvino=info["openvino"],
                rewrites=",".join(rw),
            )
            try:
                if runtime in OPENVINO_RUNTIMES and info["openvino"] is None:
                    row.error = "skipped: OpenVINO is not installed (pip install 'gancompress[openvino]')"
                    rows.append(row.to_dict())
                    continue
                if runtime in TORCH_RUNTIMES:
                    fn = _torch_callable(generator, runtime, inputs, rw, device)
                else:
                    if str(device) != "cpu":
                        raise ConfigError("ONNX Runtime and OpenVINO latency is measured on the CPU only")
                    # graphs with the same rewrites are shared between runtimes (one calibration)
                    shared = given or fixed_rewrites is not None or rw == RUNTIME_REWRITES["onnxruntime"]
                    tag = "" if shared else f".{kind}"
                    path = _onnx_path(
                        generator,
                        runtime,
                        rw,
                        files["fp32"] or workdir / f"fp32{tag}.onnx",
                        files["int8"] or workdir / f"int8{tag}.onnx",
                        calibration,
                    )
                    if runtime in ORT_RUNTIMES:
                        row.extra["ort_optimization"] = ort_optimization
                        fn = _ort_callable(path, inputs, threads, ort_optimization)
                    else:
                        row.extra["openvino_precision"] = "f32"
                        fn = _openvino_callable(path, inputs, threads)
                load_before = load_average()
                stats = time_calls(fn, warmup=warmup, repeats=repeats, device=device, min_time_s=min_time_s)
                for key, value in asdict(stats).items():
                    setattr(row, key, value)
                loads = [v for v in (load_before, load_average()) if v is not None]
                row.load_avg = max(loads) if loads else None
            except Exception as exc:  # one runtime failing must not lose the other rows
                row.error = (
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                )
            rows.append(row.to_dict())
    return rows


def _runtime_kind(runtime: str) -> str:
    if runtime in TORCH_RUNTIMES:
        return "torch"
    return "openvino" if runtime in OPENVINO_RUNTIMES else "onnxruntime"


def _onnx_path(
    generator, runtime, rewrites, fp32: str | os.PathLike, int8: str | os.PathLike, calibration
) -> Path:
    """The graph a row runs: ``fp32`` (exported with ``rewrites`` when missing) or ``int8`` (quantised
    from it when missing)."""
    from ..export.onnx import export_onnx

    fp32, int8 = Path(fp32), Path(int8)
    if not fp32.is_file():
        export_onnx(generator, fp32, rewrites=rewrites)
    if runtime not in INT8_RUNTIMES:
        return fp32
    if not int8.is_file():
        if calibration is None:
            raise ConfigError(f"{runtime} needs an int8 graph or calibration inputs (real images)")
        from ..export.int8 import quantize_onnx_int8

        quantize_onnx_int8(fp32, int8, calibration)
    return int8


def format_table(rows: Sequence[dict[str, Any]], baseline: str | None = None) -> str:
    """A markdown table of latency rows; with ``baseline`` (a row name), a speed-up column per runtime."""
    base = {r["runtime"]: r["median_ms"] for r in rows if r["name"] == baseline and r.get("median_ms")}
    base_cpu = {
        r["runtime"]: r.get("cpu_median_ms") for r in rows if r["name"] == baseline and r.get("median_ms")
    }
    head = "| model | runtime | threads | input | median ms | p10–p90 ms | CPU ms | load avg |"
    sep = "|---|---|---|---|---|---|---|---|"
    if baseline:
        head += f" speed-up vs {baseline} (wall) | (CPU time) |"
        sep += "---|---|"
    lines = [head, sep]
    for r in rows:
        shape = "×".join(str(s) for s in r["input_shape"])
        if r.get("error"):
            cells = [
                r["name"],
                r["runtime"],
                str(r["threads"]),
                shape,
                "–",
                r["error"] if r["error"].startswith("skipped") else f"failed: {r['error']}",
                "–",
                "–",
            ]
        else:
            cells = [
                r["name"],
                r["runtime"],
                str(r["threads"]),
                shape,
                f"{r['median_ms']:.1f}",
                f"{r['p10_ms']:.1f}–{r['p90_ms']:.1f}",
                "–" if r.get("cpu_median_ms") is None else f"{r['cpu_median_ms']:.1f}",
                "–" if r.get("load_avg") is None else f"{r['load_avg']:.2f}",
            ]
        if baseline:
            b, bc = base.get(r["runtime"]), base_cpu.get(r["runtime"])
            cells.append(f"{b / r['median_ms']:.1f}×" if b and r.get("median_ms") else "–")
            cells.append(f"{bc / r['cpu_median_ms']:.1f}×" if bc and r.get("cpu_median_ms") else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment_line(threads: int, device: str = "cpu") -> str:
    """One line naming the machine and versions, to print beside a table."""
    info = device_info(device)
    return (
        f"device {info['device']} ({info['cpu']}, {info['cpu_count']} logical cores), threads {threads}, "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, openvino {info['openvino']}, "
        f"Python {info['python']}, "
        f"load average {load_average()}"
    )
