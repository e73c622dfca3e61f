"""Validate before allocating, through the command line: named errors in bounded time and memory.

B2: a 300-byte ``config.json`` saying ``num_blocks: 1000000`` (or ``base_width: 1000000``) is refused
naming the field before any network is built. B3 (the saved format): a ``model.safetensors`` whose
header claims other shapes than ``config.json``'s network is refused from the header, before a tensor
is read. B11: ``profile --size 100000 100000`` of a saved generator counts on the meta device (the
right MACs, nothing allocated). B12: ``export --calibration-size 100000`` and ``evaluate --size
100000`` are refused naming the option. Each command runs in a child process whose address space is
capped (``RLIMIT_AS``), and its peak resident memory is checked.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from gancompress.data import build_font_dataset
from gancompress.export.saved import save_generator
from gancompress.models import create_generator

SRC = Path(__file__).resolve().parents[2] / "src"
ADDRESS_SPACE = 6 * 2**30  # the child cannot allocate past this: an unchecked 120 GB request fails fast
MAX_RSS = 1536 * 2**20
LIMIT_S = 120


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("limits")
    torch.manual_seed(0)
    save_generator(create_generator("resnet", base_width=4, num_blocks=3), root / "small")
    return {
        "root": root,
        "small": root / "small",
        "data": Path(build_font_dataset(root / "fonts", size=32, max_chars=6)),
    }


def run_cli(*argv: str) -> tuple[subprocess.CompletedProcess, int, float]:
    """(result, peak RSS in bytes, wall seconds) of ``gancompress ARGV`` in a capped child process."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gancompress.cli", *argv], stdout=out, stderr=err, env=env, preexec_fn=cap
        )
        deadline = time.monotonic() + LIMIT_S
        while True:  # wait4 rather than wait: it gives this child's own peak memory
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())
    return result, usage.ru_maxrss * 1024, time.perf_counter() - start


def assert_refused(result: tuple[subprocess.CompletedProcess, int, float], *names: str) -> None:
    proc, rss, _ = result
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for name in names:
        assert name in proc.stderr, proc.stderr[-3000:]
    assert rss < MAX_RSS, f"peak RSS {rss / 2**20:.0f} MB"


def edited_copy(src: Path, dst: Path, arch: str | None = None, **options) -> Path:
    """A copy of a saved generator whose config.json sets ``arch`` / ``options`` (the weights left as they are)."""
    dst.mkdir()
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    config = json.loads((src / "config.json").read_text())
    config["options"].update(options)
    if arch is not None:
        config["arch"] = arch
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_a_tiny_config_claiming_a_huge_network_is_refused_naming_the_field(cases):
    deep = edited_copy(cases["small"], cases["root"] / "deep", num_blocks=1_000_000)
    assert (deep / "config.json").stat().st_size < 1000
    for argv in (
        ["profile", str(deep)],
        ["evaluate", str(deep), "--data", str(cases["data"]), "--extractors", "domain"],
    ):
        assert_refused(run_cli(*argv), f"{deep / 'config.json'}: options.num_blocks = 1000000")
    wide = edited_copy(cases["small"], cases["root"] / "wide", arch="_".join(["1000000"] * 8))
    assert_refused(
        run_cli("profile", str(wide)), str(wide / "config.json"), "PB of weights", "memory available"
    )


def test_weights_whose_header_differs_from_the_config_are_refused_before_reading(cases):
    bad = cases["root"] / "lying-header"
    bad.mkdir()
    (bad / "config.json").write_text((cases["small"] / "config.json").read_text())
    # a valid safetensors header claiming a 10^6-wide first convolution, with no data behind it
    header = json.dumps(
        {"stem.1.weight": {"dtype": "F32", "shape": [1_000_000, 3, 7, 7], "data_offsets": [0, 0]}}
    )
    (bad / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode())
    assert_refused(run_cli("profile", str(bad)), str(bad / "model.safetensors"), "do not match")


def test_profile_at_a_huge_size_counts_on_the_meta_device(cases):
    proc, rss, _ = run_cli("profile", str(cases["small"]), "--size", "100000", "100000", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    small = json.loads(run_cli("profile", str(cases["small"]), "--size", "100", "100", "--json")[0].stdout)
    huge = json.loads(proc.stdout)
    assert huge["macs_paper"] == small["macs_paper"] * 10**6  # MACs scale with the pixels
    assert rss < MAX_RSS, f"peak RSS {rss / 2**20:.0f} MB"


def test_huge_calibration_and_evaluation_sizes_are_refused_naming_the_option(cases):
    out = cases["root"] / "exported"
    argv = [
        "export",
        str(cases["small"]),
        "--out",
        str(out),
        "--formats",
        "int8",
        "--data",
        str(cases["data"]),
    ]
    assert_refused(run_cli(*argv, "--calibration-size", "100000"), "--calibration-size", "memory")
    argv = ["evaluate", str(cases["small"]), "--data", str(cases["data"]), "--extractors", "domain"]
    assert_refused(run_cli(*argv, "--size", "100000"), "--size", "memory")


def test_a_small_pth_claiming_a_huge_width_is_refused_before_building(tmp_path, capsys):
    """B3 through the official importer: expanded (stride-0) tensors make a few-kB file whose shapes
    claim a ResNet of width 10^6; the importer refuses it on the meta device, naming the file."""
    import torch

    from reference.pix2pix_networks import ResnetGenerator

    state = ResnetGenerator(3, 3, ngf=4, n_blocks=1).state_dict()
    huge = {}
    for key, value in state.items():
        shape = [10**6 if s == 4 else s for s in value.shape] if value.dim() else []
        # an int8 scalar broadcast to the claimed shape: torch.save writes the one element
        huge[key] = torch.zeros((), dtype=value.dtype).expand(shape) if shape else value
    path = tmp_path / "latest_net_G.pth"
    torch.save(huge, path)
    assert path.stat().st_size < 64 * 1024
    from gancompress.cli import main

    code = main(["profile", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and "latest_net_G.pth" in err and "Traceback" not in err
