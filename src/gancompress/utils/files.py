"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename.

A run killed at any moment leaves either the old file or the new one, never half of one. Every
writer of the project goes through here, so the same rules hold everywhere:

* files and directories get the permissions the umask allows (0644 / 0755 under the usual 022), as
  ``open`` and ``mkdir`` would give them, not the 0600 / 0700 of temporary names; a file that is
  replaced keeps its mode;
* a symlinked output (file or directory) is written through: the link stays and its target is
  replaced, the link itself is never renamed away;
* a storage error (full disk, read-only file system, permission) is a :class:`StorageError` naming
  the path, and the previous file or directory stays as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import StorageError


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def storage_error(exc: OSError, path: Path | str, what: str = "cannot write") -> StorageError:
    """``exc`` as a :class:`StorageError` naming ``path`` (an existing one is returned as it is)."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(exc.errno, f"{what} {path}: {exc.strerror or exc}")


def resolve_output(path: Path) -> Path:
    """The path to write for ``path``: a symlink's final target (so writes go through the link)."""
    path = Path(path)
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777  # a replaced file keeps its mode
    except OSError:
        return 0o666 & ~umask()


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    A read-only or full disk raises :class:`StorageError` naming the path; the old file stays.
    """
    path = Path(path)
    target = resolve_output(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _file_mode(target))
            view = memoryview(data)
            while view:  # os.write may write less than asked; a short write on a full disk raises
                view = view[os.write(fh.fileno(), view) :]
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, path) from None
        raise
    return path


def check_writable(directory: Path) -> Path:
    """Fail early, before hours of work, when ``directory`` cannot be created or written."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(
            exc.errno, f"output directory {directory} is not writable: {exc.strerror or exc}"
        ) from None
    return directory


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _settle_tree(root: Path) -> None:
    """fsync a new directory's entries and give them the umask's permissions.

    Some libraries create their files 0600 whatever the umask (safetensors' ``save_file``); a
    directory this module puts in place gets the modes ``open`` and ``mkdir`` would have given.
    """
    mask = umask()
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def backup_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def recover_directory(path: Path) -> Path:
    """Put back a directory a killed :func:`atomic_directory` left under its backup name; returns its path."""
    target = resolve_output(Path(path))
    old = backup_name(target)
    try:
        if old.is_dir() and not old.is_symlink():
            if not target.exists():
                old.rename(target)  # killed between the two renames: the previous state comes back
            else:
                shutil.rmtree(old)  # killed after the new directory was in place
        elif old.is_symlink() or old.is_file():
            old.unlink()  # left by older versions that renamed a symlink away
    except OSError as exc:
        raise storage_error(exc, path) from None
    return target


@contextlib.contextmanager
def atomic_directory(path: Path, *, replace: bool = True) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``path``; on success it takes ``path``'s place.

    The temporary directory gets the umask's permissions; on an error it is removed and the previous
    ``path`` is left as it was (an ``OSError`` becomes a :class:`StorageError` naming ``path``). A
    symlinked ``path`` is written through. With ``replace=False`` an existing ``path`` (another
    process finished first) is kept and the new one discarded.

    Example:
        >>> with atomic_directory(Path("out/generator")) as tmp:
        ...     (tmp / "config.json").write_text("{}")
    """
    path = Path(path)
    target = recover_directory(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        yield tmp
        _settle_tree(tmp)
        if target.exists() or target.is_symlink():
            if not replace:
                return
            if not target.is_dir():
                raise StorageError(None, f"cannot write {path}: it exists and is not a directory")
            old = backup_name(target)
            target.rename(old)
            try:
                tmp.rename(target)
            except BaseException:
                old.rename(target)
                raise
            _remove(old)
        else:
            try:
                tmp.rename(target)
            except OSError:
                if replace or not target.is_dir():
                    raise  # else another process finished first: its copy stays
        _fsync_dir(target.parent)
    except OSError as exc:
        raise storage_error(exc, path) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
