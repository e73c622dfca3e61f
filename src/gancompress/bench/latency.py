"""Latency of a generator in real runtimes, measured the same way everywhere.

Runtimes are registered (:func:`register_runtime`, :func:`list_runtimes`, :func:`get_runtime`): each
is a :class:`Runtime` that says which rewrites it runs (its ``kind``), its dtype, the devices it runs
on, whether it is installed, and how to build one timed call. Registered here:

``eager``              PyTorch eager on the deploy form (fixed widths, exact rewrites); CPU or CUDA.
``channels_last``      the same, weights and input in channels-last (NHWC) memory layout.
``compile``            ``torch.compile`` (Inductor, weight freezing) of the channels-last deploy form.
``eager-bf16``         eager with weights and input in bfloat16 (CPU or CUDA).
``eager-fp16``         eager in float16 (CUDA only).
``cuda-graph``         the fp32 deploy form captured once in a CUDA graph and replayed (CUDA only).
``ort-fp32``           ONNX Runtime (CPU) on the fp32 graph of :func:`gancompress.export.onnx.export_onnx`.
``ort-int8``           ONNX Runtime on the int8 QDQ graph of :func:`gancompress.export.int8.quantize_onnx_int8`.
``ort-cuda``           ONNX Runtime's CUDA execution provider on the fp32 graph (where installed).
``openvino-fp32``      OpenVINO's CPU plugin on an fp32 graph (optional extra ``gancompress[openvino]``).
``openvino-int8``      OpenVINO on the int8 QDQ graph (the same quantiser, OpenVINO's rewrites).
``executorch-fp32``    ExecuTorch with the XNNPACK delegate, a ``.pte`` program (``gancompress[executorch]``).
``executorch-int8``    the same, quantised with PT2E and the XNNPACK quantizer on real images.
``ncnn-fp32``          ncnn, converted by pnnx, fp32 storage and arithmetic (``gancompress[ncnn]``).

Every measurement sets its threads explicitly (``torch.set_num_threads``, ORT's
``intra_op_num_threads``, OpenVINO's ``INFERENCE_NUM_THREADS``, ExecuTorch's thread pool, ncnn's
``num_threads``; 1 by default), runs ``warmup`` calls, then ``repeats`` timed calls (more if
``min_time_s`` asks for a longer window), each timed on its own with :func:`time.perf_counter`
(CUDA events for PyTorch on a GPU), and reports the median with the 10th and 90th percentiles, and
the median process CPU time. A runtime that fails gives a row with ``error`` set instead of stopping
the others; one that is not installed, or does not run on the device, gives a row whose error starts
with "skipped". Each row records the device, the versions, the threads, batch, input shape, dtype,
rewrites, the load average while it ran and ``under_load``: whether that load average exceeded the
cores left free (the CPUs this process may use minus the measuring threads), so a report can say
the figure was measured under load.

Example:
    >>> rows = measure_generator(load_generator("runs/demo/teacher"), runtimes=("eager", "ort-fp32"),
    ...                          size=(256, 256), threads=1)
    >>> rows[0]["median_ms"], rows[0]["under_load"]
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
from ..registry import Registry

#: benchmarks measure on one thread unless told otherwise: on a machine shared with other jobs more
#: threads mostly measure the others (issue: 2 threads gave 2,860 ms where 1 gave 2.6 ms)
DEFAULT_THREADS = 1


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


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota where one is set."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        count = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(float(quota) / float(period))))
    return max(1, count)


def under_load(load_avg: float | None, threads: int, cpus: int | None = None) -> bool | None:
    """Whether a load average exceeds the cores left free beside ``threads`` measuring threads.

    The measuring process itself adds about ``threads`` to the load; anything above the other
    ``cpus - threads`` cores means other work competed for the measured cores.
    """
    if load_avg is None:
        return None
    cpus = available_cpus() if cpus is None else cpus
    return load_avg > max(cpus - threads, 0)


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
    under_load: bool | None = None
    available_cpus: int | None = None
    runtime_version: str | None = None
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


# -- the runtime registry -------------------------------------------------------------------------
@dataclass
class MeasureContext:
    """What a runtime's builder gets: the model, its inputs and the measurement's setting."""

    generator: Generator
    inputs: tuple[torch.Tensor, ...]
    rewrites: tuple[str, ...]
    threads: int
    device: str
    workdir: Path
    calibration: list[Any] | None = None
    onnx_fp32: Path | None = None
    onnx_int8: Path | None = None
    shared_graphs: bool = True  # graphs of one rewrite set are shared between runtimes
    ort_optimization: str = "all"
    extra: dict[str, Any] = field(default_factory=dict)  # goes into the row's ``extra``


@dataclass(frozen=True)
class Runtime:
    """A registered runtime: how to build one timed call of a generator, and what it needs.

    ``kind`` names its rewrite set (:data:`gancompress.export.rewrite.RUNTIME_REWRITES`) and the graph
    files it shares with runtimes of the same kind; ``version`` returns the installed version or
    ``None`` when the runtime's package is missing; ``build`` returns a no-argument function whose
    calls are timed; ``clock`` is ``"device"`` where PyTorch's CUDA events time a CUDA call, ``"host"``
    where the call itself returns only when the work is done (ONNX Runtime, ExecuTorch, ncnn).
    """

    name: str
    kind: str
    build: Callable[[MeasureContext], Callable[[], object]]
    version: Callable[[], str | None]
    dtype: str = "float32"
    devices: tuple[str, ...] = ("cpu",)
    install: str = ""
    clock: str = "host"
    max_batch: int | None = None
    label: str = ""  # the package's own name, for messages ("OpenVINO is not installed")

    def runs_on(self, device: str) -> bool:
        return str(device).split(":")[0] in self.devices


RUNTIME_REGISTRY: Registry[Runtime] = Registry("runtime")
_ORDER: list[str] = []


def register_runtime(runtime: Runtime) -> Runtime:
    """Add a runtime to the registry (names are unique); it is then measurable by name everywhere.

    Example:
        >>> register_runtime(Runtime("tvm", kind="onnxruntime", build=my_builder, version=tvm_version))
    """
    RUNTIME_REGISTRY.register(runtime.name)(lambda: runtime)
    _ORDER.append(runtime.name)
    return runtime


def get_runtime(name: str) -> Runtime:
    """The registered runtime called ``name`` (unknown names raise, listing the known ones)."""
    return RUNTIME_REGISTRY.create(name)


def list_runtimes(pattern: str = "*", *, installed: bool = False, device: str | None = None) -> list[str]:
    """Registered runtime names in registration order, filtered by an fnmatch ``pattern``, by whether
    their package is installed and by the device they run on."""
    names = [n for n in _ORDER if n in RUNTIME_REGISTRY.list(pattern)]
    if installed:
        names = [n for n in names if get_runtime(n).version() is not None]
    if device is not None:
        names = [n for n in names if get_runtime(n).runs_on(device)]
    return names


def _torch_version() -> str:
    return torch.__version__


def _torch_callable(ctx: MeasureContext, layout: str = "contiguous", dtype: torch.dtype | None = None):
    from ..export.rewrite import deploy

    module = deploy(ctx.generator, ctx.rewrites).to(ctx.device)
    inputs = tuple(t.to(ctx.device) for t in ctx.inputs)
    if dtype is not None:
        module = module.to(dtype)
        inputs = tuple(t.to(dtype) for t in inputs)
    if layout in ("channels_last", "compile"):
        module = module.to(memory_format=torch.channels_last)
        inputs = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs)
    run = module
    if layout == "compile":
        import torch._inductor.config as inductor_config

        # freezing folds the weights into the graph as constants, so Inductor can pre-pack them for
        # oneDNN and fuse conv + bias + activation: the deploy setting of a fixed network
        with inductor_config.patch(freezing=True):
            run = torch.compile(module, dynamic=False)
            with torch.no_grad():
                run(*inputs)  # compile now, so a failure is caught here and not in the timing

    def call() -> object:
        with torch.no_grad():
            return run(*inputs)

    return call


def _cuda_graph_callable(ctx: MeasureContext):
    """The deploy form captured in a CUDA graph: one replay launches every kernel of a forward."""
    from ..export.rewrite import deploy

    if not torch.cuda.is_available():
        raise ConfigError("cuda-graph needs a CUDA device")
    module = deploy(ctx.generator, ctx.rewrites).to(ctx.device)
    static = tuple(t.to(ctx.device) for t in ctx.inputs)
    stream = torch.cuda.Stream(ctx.device)
    stream.wait_stream(torch.cuda.current_stream(ctx.device))
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(3):  # kernels pick their algorithms and allocate before capture
            module(*static)
    torch.cuda.current_stream(ctx.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        module(*static)
    return graph.replay


def _onnx_file(ctx: MeasureContext, kind: str, int8: bool) -> Path:
    """The graph an ONNX row runs: a given file, or one exported (and quantised) into ``workdir``."""
    from ..export.onnx import export_onnx

    tag = "" if ctx.shared_graphs else f".{kind}"
    fp32 = ctx.onnx_fp32 or ctx.workdir / f"fp32{tag}.onnx"
    if not fp32.is_file():
        export_onnx(ctx.generator, fp32, rewrites=ctx.rewrites)
    if not int8:
        return fp32
    path = ctx.onnx_int8 or ctx.workdir / f"int8{tag}.onnx"
    if not path.is_file():
        if ctx.calibration is None:
            raise ConfigError(f"{kind} int8 needs an int8 graph or calibration inputs (real images)")
        from ..export.int8 import quantize_onnx_int8

        quantize_onnx_int8(fp32, path, ctx.calibration)
    return path


def _feed(names: Sequence[str], inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    import numpy as np

    return {
        n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for n, t in zip(names, inputs)
    }


def _ort_callable(ctx: MeasureContext, int8: bool):
    from ..export.onnx import ort_session

    ctx.extra["ort_optimization"] = ctx.ort_optimization
    path = _onnx_file(ctx, "onnxruntime", int8)
    session = ort_session(path, threads=ctx.threads, optimization=ctx.ort_optimization)
    feed = _feed([i.name for i in session.get_inputs()], ctx.inputs)
    return lambda: session.run(None, feed)


def _ort_version() -> str | None:
    try:
        import onnxruntime

        return str(onnxruntime.__version__)
    except ImportError:  # pragma: no cover - a dependency
        return None


def _ort_cuda_providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except ImportError:  # pragma: no cover - a dependency
        return []


def _ort_cuda_version() -> str | None:
    if "CUDAExecutionProvider" not in _ort_cuda_providers():
        return None
    import onnxruntime as ort

    return ort.__version__


def _ort_cuda_callable(ctx: MeasureContext):
    import onnxruntime as ort

    path = _onnx_file(ctx, "onnxruntime", False)
    index = int(ctx.device.split(":")[1]) if ":" in ctx.device else 0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = ctx.threads
    providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise ConfigError("ONNX Runtime did not place the graph on its CUDA execution provider")
    ctx.extra["ort_providers"] = session.get_providers()
    feed = _feed([i.name for i in session.get_inputs()], ctx.inputs)
    return lambda: session.run(None, feed)  # returns host arrays: the call waits for the GPU


def _openvino_version() -> str | None:
    from ..export.openvino import openvino_version

    return openvino_version()


def _openvino_callable(ctx: MeasureContext, int8: bool):
    from ..export.openvino import openvino_model

    ctx.extra["openvino_precision"] = "f32"
    path = _onnx_file(ctx, "openvino", int8)
    compiled = openvino_model(path, threads=ctx.threads, shapes=[list(t.shape) for t in ctx.inputs])
    request = compiled.create_infer_request()
    feed = dict(enumerate(_feed([str(i) for i in range(len(ctx.inputs))], ctx.inputs).values()))
    return lambda: request.infer(feed)


def _executorch_version() -> str | None:
    from ..export.executorch import executorch_version

    return executorch_version()


def _executorch_callable(ctx: MeasureContext, int8: bool):
    from ..export.executorch import executorch_callable, export_executorch

    size = tuple(ctx.inputs[0].shape[-2:])
    path = ctx.workdir / f"executorch-{'int8' if int8 else 'fp32'}{_tag(ctx.rewrites)}.pte"
    if not path.is_file():
        if int8 and ctx.calibration is None:
            raise ConfigError("executorch-int8 needs calibration inputs (real images)")
        _, summary = export_executorch(
            ctx.generator,
            path,
            rewrites=ctx.rewrites,
            size=size,
            calibration=ctx.calibration if int8 else None,
        )
        ctx.extra["delegation"] = summary
    run = executorch_callable(path, threads=ctx.threads)
    inputs = tuple(t.contiguous() for t in ctx.inputs)
    return lambda: run(*inputs)


def _ncnn_version() -> str | None:
    from ..export.ncnn import ncnn_version

    return ncnn_version()


def _ncnn_callable(ctx: MeasureContext):
    from ..export.ncnn import export_ncnn, ncnn_callable, ncnn_layers

    path = ctx.workdir / f"ncnn-fp32{_tag(ctx.rewrites)}.ncnn.param"
    if not path.is_file():
        export_ncnn(ctx.generator, path, rewrites=ctx.rewrites, size=tuple(ctx.inputs[0].shape[-2:]))
    ctx.extra["ncnn_layers"] = ncnn_layers(path)
    run = ncnn_callable(path, threads=ctx.threads)
    x = ctx.inputs[0]
    return lambda: run(x)


def _tag(rewrites: Sequence[str]) -> str:
    # one file per rewrite set, so that rows with other rewrites never reuse a stale program
    import hashlib

    return "." + hashlib.sha1(",".join(rewrites).encode()).hexdigest()[:8]


_MOBILE_EXTRA = "pip install 'gancompress[{}]'"
for _rt in (
    Runtime(
        "eager",
        "torch",
        _torch_callable,
        _torch_version,
        devices=("cpu", "cuda"),
        clock="device",
    ),
    Runtime(
        "channels_last",
        "torch",
        lambda c: _torch_callable(c, "channels_last"),
        _torch_version,
        devices=("cpu", "cuda"),
        clock="device",
    ),
    Runtime(
        "compile",
        "torch",
        lambda c: _torch_callable(c, "compile"),
        _torch_version,
        devices=("cpu", "cuda"),
        clock="device",
    ),
    Runtime(
        "eager-bf16",
        "torch",
        lambda c: _torch_callable(c, dtype=torch.bfloat16),
        _torch_version,
        dtype="bfloat16",
        devices=("cpu", "cuda"),
        clock="device",
    ),
    Runtime(
        "eager-fp16",
        "torch",
        lambda c: _torch_callable(c, dtype=torch.float16),
        _torch_version,
        dtype="float16",
        devices=("cuda",),
        clock="device",
    ),
    Runtime("cuda-graph", "torch", _cuda_graph_callable, _torch_version, devices=("cuda",), clock="device"),
    Runtime("ort-fp32", "onnxruntime", lambda c: _ort_callable(c, False), _ort_version),
    Runtime("ort-int8", "onnxruntime", lambda c: _ort_callable(c, True), _ort_version, dtype="int8"),
    Runtime(
        "ort-cuda",
        "onnxruntime",
        _ort_cuda_callable,
        _ort_cuda_version,
        devices=("cuda",),
        install="pip install onnxruntime-gpu",
        label="ONNX Runtime's CUDA execution provider",
    ),
    Runtime(
        "openvino-fp32",
        "openvino",
        lambda c: _openvino_callable(c, False),
        _openvino_version,
        install=_MOBILE_EXTRA.format("openvino"),
        label="OpenVINO",
    ),
    Runtime(
        "openvino-int8",
        "openvino",
        lambda c: _openvino_callable(c, True),
        _openvino_version,
        dtype="int8",
        install=_MOBILE_EXTRA.format("openvino"),
        label="OpenVINO",
    ),
    Runtime(
        "executorch-fp32",
        "executorch",
        lambda c: _executorch_callable(c, False),
        _executorch_version,
        install=_MOBILE_EXTRA.format("executorch"),
        label="ExecuTorch",
        max_batch=1,
    ),
    Runtime(
        "executorch-int8",
        "executorch",
        lambda c: _executorch_callable(c, True),
        _executorch_version,
        dtype="int8",
        install=_MOBILE_EXTRA.format("executorch"),
        label="ExecuTorch",
        max_batch=1,
    ),
    Runtime(
        "ncnn-fp32",
        "ncnn",
        _ncnn_callable,
        _ncnn_version,
        install=_MOBILE_EXTRA.format("ncnn"),
        max_batch=1,
        label="ncnn",
    ),
):
    register_runtime(_rt)

#: every registered runtime, in registration order (kept as a tuple for ``choices=``)
RUNTIMES = tuple(_ORDER)
INT8_RUNTIMES = tuple(n for n in RUNTIMES if get_runtime(n).dtype == "int8")
TORCH_RUNTIMES = tuple(n for n in RUNTIMES if get_runtime(n).kind == "torch")
ORT_RUNTIMES = tuple(n for n in RUNTIMES if get_runtime(n).kind == "onnxruntime")
OPENVINO_RUNTIMES = tuple(n for n in RUNTIMES if get_runtime(n).kind == "openvino")
MOBILE_RUNTIMES = tuple(n for n in RUNTIMES if get_runtime(n).kind in ("executorch", "ncnn"))


def measure_generator(
    generator: Generator,
    *,
    name: str = "model",
    runtimes: Iterable[str] = ("eager", "ort-fp32"),
    size: tuple[int, int] | None = None,
    batch: int = 1,
    threads: int = DEFAULT_THREADS,
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
    """Latency rows (dicts) of ``generator`` in each of the registered ``runtimes`` on one input.

    Graphs and programs are exported into ``workdir`` (a temporary folder by default) unless given;
    int8 runtimes need ``onnx_int8`` or ``calibration`` inputs (real images, see
    :func:`gancompress.export.int8.calibration_inputs`), otherwise their row carries an error.
    ``rewrites=None`` gives each runtime the rewrites chosen for its kind
    (:data:`gancompress.export.rewrite.RUNTIME_REWRITES`); given rewrites apply to every runtime, and
    given ``onnx_fp32`` / ``onnx_int8`` files serve the ONNX runtimes. Rows of runtimes that are not
    installed or do not run on ``device`` are skipped (``error`` starting "skipped").

    Example:
        >>> measure_generator(g, name="student", runtimes=RUNTIMES, size=(256, 256),
        ...                   calibration=calibration_inputs(g, data_root))
    """
    from ..export.rewrite import RUNTIME_REWRITES, example_inputs

    runtimes = list(runtimes)
    specs = [get_runtime(r) for r in runtimes]  # unknown names raise here, listing the known ones
    if batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}")
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    fixed_rewrites = None if rewrites is None else tuple(rewrites)
    if calibration is not None:
        calibration = list(calibration)  # may calibrate several int8 graphs
    inputs = example_inputs(generator, size, batch)
    info = device_info(device)
    cpus = available_cpus()
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gancompress-latency-"))
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(torch_threads(threads))
        for spec in specs:
            rw = fixed_rewrites if fixed_rewrites is not None else tuple(RUNTIME_REWRITES[spec.kind])
            onnx_kind = spec.kind in ("onnxruntime", "openvino")
            given_file = onnx_int8 if spec.dtype == "int8" and onnx_int8 is not None else onnx_fp32
            given = onnx_kind and given_file is not None
            if given:
                from ..export.onnx import onnx_metadata

                with contextlib.suppress(Exception):  # a file from elsewhere may carry no metadata
                    rw = tuple(r for r in onnx_metadata(given_file).get("rewrites", "").split(",") if r)
            row = LatencyRow(
                name=name,
                runtime=spec.name,
                batch=batch,
                input_shape=list(inputs[0].shape),
                dtype=spec.dtype,
                threads=threads,
                device=str(device),
                cpu=info["cpu"],
                torch=info["torch"],
                onnxruntime=info["onnxruntime"],
                python=info["python"],
                openvino=info["openvino"],
                available_cpus=cpus,
                rewrites=",".join(rw),
            )
            try:
                row.runtime_version = spec.version()
                skip = _skip_reason(spec, device, batch, row.runtime_version)
                if skip:
                    row.error = f"skipped: {skip}"
                    rows.append(row.to_dict())
                    continue
                ctx = MeasureContext(
                    generator=generator,
                    inputs=inputs,
                    rewrites=rw,
                    threads=threads,
                    device=str(device),
                    workdir=workdir,
                    calibration=calibration,
                    onnx_fp32=Path(onnx_fp32) if onnx_fp32 is not None else None,
                    onnx_int8=Path(onnx_int8) if onnx_int8 is not None else None,
                    # graphs with the same rewrites are shared between runtimes (one calibration)
                    shared_graphs=given
                    or fixed_rewrites is not None
                    or rw == RUNTIME_REWRITES["onnxruntime"],
                    ort_optimization=ort_optimization,
                )
                try:
                    fn = spec.build(ctx)
                finally:
                    row.extra.update(ctx.extra)
                clock = str(device) if spec.clock == "device" else "cpu"
                load_before = load_average()
                stats = time_calls(fn, warmup=warmup, repeats=repeats, device=clock, min_time_s=min_time_s)
                for key, value in asdict(stats).items():
                    setattr(row, key, value)
                loads = [v for v in (load_before, load_average()) if v is not None]
                row.load_avg = max(loads) if loads else None
                row.under_load = under_load(row.load_avg, threads, cpus)
            except Exception as exc:  # one runtime failing must not lose the other rows
                row.error = (
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                )
            rows.append(row.to_dict())
    return rows


def _skip_reason(spec: Runtime, device: str, batch: int, version: str | None) -> str | None:
    """Why a runtime's row is not measured here (``None`` when it is)."""
    if version is None:
        return f"{spec.label or spec.name} is not installed" + (f" ({spec.install})" if spec.install else "")
    if not spec.runs_on(device):
        return f"{spec.name} runs on {' or '.join(spec.devices)}, not {device}"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return f"{spec.name}: no CUDA device here"
    if spec.max_batch is not None and batch > spec.max_batch:
        return f"{spec.name} is measured at batch {spec.max_batch}, not {batch}"
    return None


def deployed_latency_ms(
    generator: Generator,
    size: tuple[int, int] | None = None,
    *,
    runtime: str = "eager",
    threads: int = DEFAULT_THREADS,
    warmup: int = 3,
    repeats: int = 10,
    device: str = "cpu",
    calibration: Iterable[Any] | None = None,
) -> float:
    """The median latency (ms) of ``generator``'s deploy form in one registered runtime; raises on failure.

    The one function other parts of the library time a model through (the GAN Compression search's
    latency table does), so that a latency budget means the same as a reported latency.

    Example:
        >>> deployed_latency_ms(supernet.extract_subnet(arch), (256, 256), runtime="ort-fp32")
    """
    (row,) = measure_generator(
        generator,
        runtimes=(runtime,),
        size=size,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        device=device,
        calibration=calibration,
    )
    if row["error"]:
        raise ConfigError(f"latency of {generator.family} in {runtime}: {row['error']}")
    return float(row["median_ms"])


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
            if r.get("under_load"):
                cells[-1] += " (measured under load)"
        if baseline:
            b, bc = base.get(r["runtime"]), base_cpu.get(r["runtime"])
            cells.append(f"{b / r['median_ms']:.1f}×" if b and r.get("median_ms") else "–")
            cells.append(f"{bc / r['cpu_median_ms']:.1f}×" if bc and r.get("cpu_median_ms") else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment_line(threads: int, device: str = "cpu") -> str:
    """One line naming the machine and versions, to print beside a table."""
    info = device_info(device)
    default = " (the benchmark default)" if threads == DEFAULT_THREADS else ""
    return (
        f"device {info['device']} ({info['cpu']}, {info['cpu_count']} logical cores, "
        f"{available_cpus()} usable), threads {threads}{default}, "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, openvino {info['openvino']}, "
        f"Python {info['python']}, "
        f"load average {load_average()}"
    )
