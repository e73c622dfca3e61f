"""The compression methods under torchrun, as two gloo processes on this machine: the GAN Compression
search shares its candidates between the ranks, and a whole ``compress`` run ends where one process
with twice the batch ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from dist_workers import NO_GATE, TINY, compress_worker, run_compress, run_search, search_worker, tiny_teacher
from safetensors import safe_open
from safetensors.torch import load_file

import gancompress
from gancompress.data import build_font_dataset
from gancompress.export.saved import save_generator

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("strategy", ["exhaustive", pytest.param("evolution", marks=pytest.mark.slow)])
def test_two_ranks_share_the_search_and_find_what_one_process_finds(tmp_path, strategy):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_search(tmp_path / "one", strategy)
    finally:
        torch.set_num_threads(threads)
    (tmp_path / "two").mkdir()
    mp.spawn(search_worker, args=(2, _free_port(), str(tmp_path / "two"), strategy), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        for k in ("arch", "score", "cost", "candidates", "evaluations", "history"):
            assert r[k] == single[k], k
    # each candidate was scored once, by one rank, and the ranks split the work
    shares = [set(r["computed"]) for r in ranks]
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(single["computed"])
    assert all(len(s) < len(single["computed"]) for s in shares)
    # rank 0 wrote the merged cache: the same entries and scores as the single process's
    one = json.loads((tmp_path / "one" / "cache.json").read_text())["entries"]
    two = json.loads((tmp_path / "two" / "cache.json").read_text())["entries"]
    assert two.keys() == one.keys() and len(one) == single["evaluations"] > 2
    for k in one:
        assert two[k] == pytest.approx(one[k], rel=1e-6)


@pytest.mark.slow
def test_two_gloo_processes_compress_to_the_student_of_one_process_with_twice_the_batch(tmp_path):
    data = build_font_dataset(tmp_path / "fonts", size=32, max_chars=20, seed=0)
    mp.spawn(compress_worker, args=(2, _free_port(), str(data), str(tmp_path / "two")), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "two" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "two" / "rank1.safetensors"))
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_compress(str(data), tmp_path / "one", batch_size=2)
    finally:
        torch.set_num_threads(threads)
    with safe_open(str(tmp_path / "two" / "rank0.safetensors"), "pt") as f:
        assert f.metadata()["arch"] == str(single.generator.arch)  # the search chose the same subnet
    for k, v in single.generator.state_dict().items():
        # A bias right before an instance norm changes no output (its gradient is rounding noise that
        # Adam scales up to full steps): those are compared through the outputs below.
        if not k.endswith(".bias"):
            torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    two = type(single.generator).from_options(single.generator.arch, dict(single.generator.options))
    two.load_state_dict(r0)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(two.eval()(x), single.generator.eval()(x), rtol=1e-4, atol=1e-4)
    # one process wrote the run: its summary counts the 2-process stages at the global batch
    summary = json.loads((tmp_path / "two" / "method_summary.json").read_text())
    one = json.loads((tmp_path / "one" / "method_summary.json").read_text())
    assert summary["stages"]["supernet"]["steps"] == one["stages"]["supernet"]["steps"]
    assert summary["details"]["search"]["arch"] == one["details"]["search"]["arch"]
    assert (tmp_path / "two" / "student" / "model.safetensors").is_file()


@pytest.mark.slow
def test_torchrun_compress_command_runs_two_processes_and_rank_0_writes_and_prints_once(tmp_path):
    # The command docs/training.md shows, on the CPU (gloo): torchrun starting `gancompress compress`.
    data = build_font_dataset(tmp_path / "fonts", size=32, max_chars=20, seed=0)
    save_generator(tiny_teacher(), tmp_path / "teacher")
    out = tmp_path / "run"
    sets = [a for kv in (*TINY["coronet"], *NO_GATE) for a in ("--set", kv)]
    src = str(Path(gancompress.__file__).parents[1])
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1"
    )
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "gancompress.cli", "compress", "--method", "coronet", "--teacher", str(tmp_path / "teacher"),
        "--data", str(data), "--out", str(out), "--device", "cpu", "--threads", "1", "--quick",
        "--ratio", "0.3", "--json", *sets,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"macs_reduction"') == 1  # rank 0 alone printed the result
    assert done.stdout.count("coronet: plan") == 1  # and the run's progress lines
    printed, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.rindex("\n{") + 1 :])
    assert printed["method"] == "coronet" and printed["macs_reduction"] > 1
    for name in ("generator/config.json", "summary.json", "method_summary.json", "student/model.safetensors"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp"))  # no write was left half done by a second writer
