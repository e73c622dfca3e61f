"""The one error boundary of the command line: any exception that reaches ``main`` is one line naming
the file, field or option and what to do, with a non-zero status; ``--debug`` or
``GANCOMPRESS_DEBUG=1`` adds the traceback."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest
from PIL import Image

import gancompress.commands
from gancompress.cli import describe_error, main
from gancompress.errors import ConfigError, GanCompressError, StorageError


def raising(exc: BaseException):
    def func(args):
        raise exc

    return func


def run_list(monkeypatch, capsys, exc: BaseException, *extra: str) -> tuple[int, str]:
    monkeypatch.setattr(gancompress.commands, "cmd_list", raising(exc))
    code = main([*extra, "list"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "code", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.safetensors"), 1, "disk is full"),
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"), 1, "read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/cache"), 1, "permission"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/no/such/file"), 1, "check the path"),
        (MemoryError(), 1, "out of CPU memory"),
        (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
        (UnicodeDecodeError("utf-8", b"ab\xffcd", 2, 3, "invalid start byte"), 2, "not UTF-8"),
        (
            Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit"),
            2,
            "too large to decode",
        ),
        (KeyboardInterrupt(), 130, "interrupted; rerun the same command to resume"),
        (ConfigError("--ratio: must be in (0, 1)"), 2, "--ratio: must be in (0, 1)"),
        (StorageError(errno.ENOSPC, "cannot write /x/y: No space left"), 2, "/x/y: No space left (ENOSPC)"),
        (KeyError("weights"), 1, "internal error (KeyError"),
        (
            RuntimeError(
                "Given groups=1, weight of size [8, 3, 7, 7], expected input[1, 1, 38, 38] to have 3 channels"
            ),
            2,
            "a model does not fit its input",
        ),
    ],
)
def test_every_exception_is_one_named_line(monkeypatch, capsys, exc, code, expected):
    got, err = run_list(monkeypatch, capsys, exc)
    assert got == code
    assert expected in err and "Traceback" not in err
    assert err.startswith("gancompress list: error: ") and err.count("\n") == 1
    filename = getattr(exc, "filename", None)
    if filename:
        assert filename in err
        assert errno.errorcode[exc.errno] in err  # ENOSPC, EROFS, EACCES, ENOENT


def test_a_subclass_may_choose_its_exit_status(monkeypatch, capsys):
    class GateError(GanCompressError):
        exit_code = 1

    assert run_list(monkeypatch, capsys, GateError("the student failed the quality gate"))[0] == 1
    assert describe_error(GanCompressError("x"))[1] == 2


@pytest.mark.parametrize("how", ["flag-before", "flag-after", "env"])
def test_debug_adds_the_traceback(monkeypatch, capsys, how):
    exc = OSError(errno.ENOSPC, "No space left on device", "/full/disk")
    monkeypatch.setattr(gancompress.commands, "cmd_list", raising(exc))
    if how == "env":
        monkeypatch.setenv("GANCOMPRESS_DEBUG", "1")
        argv = ["list"]
    else:
        argv = ["--debug", "list"] if how == "flag-before" else ["list", "--debug"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "/full/disk" in err.splitlines()[-1]


def test_real_unreadable_recipes_are_named(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("task: pix2pix\nname: caf\xe9\n".encode("latin-1"))
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    for recipe, message in ((bad, "not UTF-8"), (deep, "nested too deeply")):
        assert (
            main(["train", "--task", "pix2pix", "--out", str(tmp_path / "o"), "--recipe", str(recipe)]) == 2
        )
        err = capsys.readouterr().err
        assert message in err and str(recipe) in err and "Traceback" not in err


def test_interrupt_in_a_real_process_exits_130():
    code = (
        "import sys, gancompress.commands as c\n"
        "def boom(args):\n    raise KeyboardInterrupt\n"
        "c.cmd_list = boom\n"
        "from gancompress.cli import main\nsys.exit(main(['list']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130
    assert "rerun the same command to resume" in done.stderr and "Traceback" not in done.stderr
