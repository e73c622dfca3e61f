"""Run directories through the command line: one run at a time, one recipe per run, never over the teacher.

B1: ``compress --out`` that is, contains or lies inside the teacher's directory is refused before
anything is written. B7: a resume with another recipe (train: a learning rate; GAN Slimming: ``--rho``)
is refused naming the changed fields, before ``config.yaml`` is rewritten; ``--resume-anyway`` and
``--no-resume`` go on. B8: a directory locked by a live process is refused naming it; a lock left by
a dead process is taken over with a message.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import test_bad_input_cli as cli_cases

from gancompress.utils.rundir import FINGERPRINT_NAME, LOCK_NAME, _proc_start

GS_QUICK = [
    "--quick",
    *("--set", "data.load_size=32", "--set", "data.crop_size=32"),
    *("--set", "data.batch_size=2", "--set", "data.holdout=2"),
    *("--set", "discriminator.base_width=4", "--set", "slim.train.max_steps=2"),
    *("--set", "finetune.max_steps=1", "--set", "quant.calibration_images=2"),
]

_one_thread = cli_cases._one_thread  # fixtures shared with the other command-line tests
shared = cli_cases.shared
compress = cli_cases.compress
error = cli_cases.error
train = cli_cases.train


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["contains", "is", "inside"])
def test_out_that_is_contains_or_lies_inside_the_teacher_is_refused(tmp_path, shared, capsys, where):
    run = tmp_path / "RUN"
    shutil.copytree(shared["teacher"], run / "generator")
    (run / "generator" / "discriminator.json").write_text("{}")
    (run / "summary.json").write_text('{"teacher": true}')
    before = snapshot(run)
    out = {"contains": run, "is": run / "generator", "inside": run / "generator" / "student"}[where]
    assert compress(shared, "gan-slimming", shared["data"], out, *GS_QUICK, teacher=run / "generator") == 2
    err = error(capsys)
    assert "teacher" in err and f"--out {out}" in err
    assert snapshot(run) == before


def test_train_resume_with_another_recipe_is_refused_before_config_is_rewritten(tmp_path, shared, capsys):
    out = tmp_path / "run"
    assert train(shared, shared["data"], out, "--steps", "1") == 0
    config = (out / "config.yaml").read_bytes()
    before = snapshot(out / "checkpoints")
    assert train(shared, shared["data"], out, "--steps", "2", "--set", "optim.lr_g=0.001") == 2
    err = error(capsys)
    assert "optim.lr_g" in err and "0.001" in err and "--resume-anyway" in err
    assert (out / "config.yaml").read_bytes() == config and snapshot(out / "checkpoints") == before
    # more steps with the same recipe is a resume, not another run
    assert train(shared, shared["data"], out, "--steps", "2") == 0
    # explicitly: continue with the new settings (recorded), or start over
    assert (
        train(shared, shared["data"], out, "--steps", "3", "--set", "optim.lr_g=0.001", "--resume-anyway")
        == 0
    )
    record = json.loads((out / FINGERPRINT_NAME).read_text())
    assert any("optim.lr_g" in f for c in record["changes"] for f in c["fields"])
    assert train(shared, shared["data"], out, "--steps", "1", "--set", "optim.lr_g=0.005", "--no-resume") == 0


def test_gan_slimming_rerun_with_another_rho_is_refused(tmp_path, shared, capsys):
    out = tmp_path / "gs"
    assert compress(shared, "gan-slimming", shared["data"], out, *GS_QUICK) == 0
    student = snapshot(out / "generator")
    assert compress(shared, "gan-slimming", shared["data"], out, *GS_QUICK, "--rho", "50") == 2
    err = error(capsys)
    assert "rho: None -> 50.0" in err
    assert snapshot(out / "generator") == student


def _lock(out: Path, pid: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": socket.gethostname(), "start": _proc_start(pid), "since": 0}
    (out / LOCK_NAME).write_text(json.dumps(record))


def test_a_directory_in_use_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path, shared, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(["sleep", "60"])
    try:
        _lock(out, holder.pid)
        assert train(shared, shared["data"], out, "--steps", "1") == 2
        err = error(capsys)
        assert f"in use by process {holder.pid}" in err
        assert not (out / "checkpoints").exists() and not (out / "config.yaml").exists()
        assert compress(shared, "gan-slimming", shared["data"], out, *GS_QUICK) == 2
        assert f"in use by process {holder.pid}" in error(capsys)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (as after SIGKILL): its lock is taken over, and released at the end
    assert train(shared, shared["data"], out, "--steps", "1") == 0
    assert f"taking over the lock of {out} left by process {holder.pid}" in error(capsys)
    assert not (out / LOCK_NAME).exists()


def test_run_dir_library_rules(tmp_path):
    from gancompress.errors import ConfigError
    from gancompress.utils.rundir import RunDir, RunInUseError

    run = tmp_path / "run"
    with RunDir(run, {"a": 1, "train": {"max_steps": 1}}):
        with RunDir(run, {"a": 1}):  # one process nesting runs in its own directory
            pass
        assert (run / LOCK_NAME).exists()
    assert not (run / LOCK_NAME).exists()
    # nothing computed yet (a first attempt that failed early): a corrected recipe is simply recorded
    with RunDir(run, {"a": 2}):
        pass
    (run / "checkpoints").mkdir()
    with RunDir(run, {"a": 2, "train": {"max_steps": 9}}):  # how far a run goes may change
        pass
    with pytest.raises(ConfigError, match=r"a: 2 -> 3"):
        RunDir(run, {"a": 3}).__enter__()
    assert not (run / LOCK_NAME).exists()  # a refused run leaves no lock behind
    record = {"pid": 1, "host": "elsewhere.example", "since": 0}
    (run / LOCK_NAME).write_text(json.dumps(record))
    with pytest.raises(
        RunInUseError, match=f"locked by process 1 on host elsewhere.example.*delete {run / LOCK_NAME}"
    ):
        RunDir(run, {"a": 2}).__enter__()
