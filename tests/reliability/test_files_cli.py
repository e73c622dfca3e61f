"""Written files through the command line: the umask's permissions, symlinked outputs, storage errors.

B20: every file and directory a command writes (the saved generator, checkpoints, logs, ONNX files,
a prepared dataset) gets the permissions the umask allows, not 0600 / 0700. B15: a symlinked
``generator/`` is written through (the link stays, its target holds the new model) and leaves no
``.generator.old``. Storage errors: a full disk (``os.write`` / PIL raising ENOSPC) or a read-only
cache (EROFS) during ``train``, ``export``, ``data prepare`` and the built-in dataset cache is a
named error (exit 2, no traceback), and the previous state is left intact with no temporary left.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
import test_bad_input_cli as cli_cases

from gancompress.cli import main
from gancompress.export.saved import load_generator

_one_thread = cli_cases._one_thread  # fixtures shared with the other command-line tests
shared = cli_cases.shared
error = cli_cases.error
train = cli_cases.train


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_every_written_file_and_directory_honours_the_umask(tmp_path, shared, umask_027):
    out = tmp_path / "run"
    assert train(shared, shared["data"], out, "--steps", "2") == 0
    exported = tmp_path / "exported"
    assert main(["export", str(out / "generator"), "--out", str(exported), "--formats", "onnx"]) == 0
    data = tmp_path / "prepared"
    assert (
        main(["data", "prepare", "fonts", "--out", str(data), "--set", "size=32", "--set", "max_chars=4"])
        == 0
    )
    for root in (out, exported, data):
        found = modes(root)
        wrong = {
            k: oct(m)
            for k, m in found.items()
            if m != (0o750 if (root / k).is_dir() else 0o640) and not k.startswith("logs/tensorboard")
        }
        assert not wrong, wrong
        assert any(k.endswith(".safetensors") or k.endswith(".onnx") or k.endswith(".png") for k in found)


def test_a_symlinked_generator_is_written_through_and_leaves_no_backup(tmp_path, shared):
    out = tmp_path / "run"
    assert train(shared, shared["data"], out, "--steps", "1") == 0
    elsewhere = tmp_path / "deployed" / "generator"
    elsewhere.parent.mkdir()
    (out / "generator").rename(elsewhere)
    (out / "generator").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    for steps in ("2", "3"):  # twice: a stale backup would break the second save
        assert train(shared, shared["data"], out, "--steps", steps) == 0
        assert (out / "generator").is_symlink() and os.path.realpath(out / "generator") == str(elsewhere)
        assert load_generator(out / "generator") is not None
        assert not [p.name for p in [*out.iterdir(), *elsewhere.parent.iterdir()] if p.name.startswith(".")]
    assert snapshot(elsewhere) != before


def test_full_disk_in_train_keeps_the_previous_run(tmp_path, shared, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train(shared, shared["data"], out, "--steps", "1") == 0
    before = snapshot(out)
    real_write = os.write

    def full(fd, data):
        if os.fstat(fd).st_size + len(data) > 64:  # small files (the lock) pass, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    assert train(shared, shared["data"], out, "--steps", "3") == 2
    monkeypatch.undo()
    err = error(capsys)
    assert "No space left on device" in err and str(out) in err
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before and not k.startswith("logs")} == {
        k: v for k, v in before.items() if not k.startswith("logs")
    }
    assert not [p for p in out.rglob(".*") if p.name != ".gancompress.lock"]


def test_full_disk_in_data_prepare_and_export_is_named_and_leaves_nothing(
    tmp_path, shared, capsys, monkeypatch
):
    from PIL import Image

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    data = tmp_path / "prepared"
    assert (
        main(["data", "prepare", "fonts", "--out", str(data), "--set", "size=32", "--set", "max_chars=4"])
        == 2
    )
    err = error(capsys)
    assert "No space left on device" in err and str(data) in err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    exported = tmp_path / "exported"
    assert main(["export", str(shared["teacher"]), "--out", str(exported), "--formats", "onnx"]) == 0
    before = snapshot(exported)
    monkeypatch.setattr(
        os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left"))
    )
    assert main(["export", str(shared["teacher"]), "--out", str(exported), "--formats", "onnx"]) == 2
    assert "No space left" in error(capsys)
    monkeypatch.undo()
    assert snapshot(exported) == before and not [p for p in exported.iterdir() if p.name.startswith(".")]


def test_read_only_cache_for_the_builtin_dataset_is_named(tmp_path, shared, capsys, monkeypatch):
    import tempfile

    cache = tmp_path / "cache"
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(cache))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    assert train(shared, "builtin:fonts", tmp_path / "run", "--steps", "1") == 2
    err = error(capsys)
    assert "Read-only file system" in err and str(cache) in err
