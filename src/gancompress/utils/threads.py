"""How many CPU threads a run uses: by default the CPUs this process may use (its affinity mask and
the cgroup CPU quota of its container), not the machine's core count, so a run in a 2-CPU container on
a 64-core host does not start 64 busy threads. Benchmarks default to one thread (see
:data:`BENCHMARK_THREADS`), which is the most reproducible latency on a shared machine.

Example:
    >>> default_threads()     # 2 in a container limited to 2 CPUs
    2
"""

from __future__ import annotations

import math
import os
from pathlib import Path

BENCHMARK_THREADS = 1
MAX_THREADS = 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup, v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def default_threads() -> int:
    """The thread count every verb uses unless ``--threads`` says otherwise: :func:`available_cpus`,
    or ``OMP_NUM_THREADS`` when that is set and smaller."""
    cpus = available_cpus()
    try:
        omp = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return cpus
    return max(1, min(cpus, omp))


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: :func:`default_threads`); returns the count."""
    import torch

    count = default_threads() if threads is None else int(threads)
    torch.set_num_threads(count)
    return count
