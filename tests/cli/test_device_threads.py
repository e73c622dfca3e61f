"""The one meaning of ``--device`` (``resolve_device``) and the one default of ``--threads``
(``available_cpus`` / ``default_threads``): CPUs this process may use, not the host's cores."""

from __future__ import annotations

import os

import pytest
import torch

import gancompress.commands
from gancompress.cli import main
from gancompress.errors import ConfigError
from gancompress.utils import device as device_mod
from gancompress.utils.device import resolve_device
from gancompress.utils.threads import available_cpus, default_threads


def affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_caps_the_affinity(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == affinity()
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still runs one thread
    assert available_cpus(tmp_path) == 1


def test_cgroup_v1_quota_and_no_cgroup(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == affinity()
    assert available_cpus(tmp_path / "missing") == affinity()


def test_omp_num_threads_caps_the_default(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "bogus")
    assert default_threads() == available_cpus()


def test_a_command_sets_its_threads_and_restores_the_callers(monkeypatch):
    seen = []
    monkeypatch.setattr(
        gancompress.commands, "cmd_profile", lambda args: seen.append(torch.get_num_threads())
    )
    before = torch.get_num_threads()
    assert main(["profile", "resnet"]) == 0  # profile has no --threads: untouched
    assert main(["data", "list"]) == 0
    assert torch.get_num_threads() == before and seen == [before]


def test_device_auto_cpu_and_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == resolve_device("cpu") == "cpu"
    for bad in ("bogus", "cpu:1", "gpu", "cuda:x", ""):
        with pytest.raises(ConfigError, match="--device"):
            resolve_device(bad)
    monkeypatch.setattr(device_mod.torch.version, "cuda", None)
    monkeypatch.setattr(device_mod.torch.version, "hip", None)
    with pytest.raises(ConfigError, match="no CUDA support"):
        resolve_device("cuda")


def test_device_with_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(device_mod.torch.version, "cuda", "12.8")
    assert resolve_device("auto") == "cuda" and resolve_device("CUDA:1") == "cuda:1"
    with pytest.raises(ConfigError, match="only 2 CUDA device"):
        resolve_device("cuda:2")
