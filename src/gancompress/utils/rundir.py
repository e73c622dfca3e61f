"""Run directories: one run at a time, one recipe per run, never on top of its own teacher.

``RunDir(path, recipe, teacher_path=...)`` is entered by ``gancompress train`` and ``compress`` before
anything in the directory is read or rewritten:

* **lock**: ``path/.gancompress.lock`` holds the PID, host and start time of the run using the
  directory; a second run on it is refused naming the holder. A lock left by a process that is gone
  (killed, crashed) on this host is taken over with a message.
* **fingerprint**: ``path/fingerprint.json`` holds the run's recipe, flattened to dotted keys. A
  resume whose recipe differs is refused naming the changed fields (``--no-resume`` starts over,
  ``--resume-anyway`` continues and records the change). Fields that only say how far or how a run
  proceeds (``*.max_steps``, logging and checkpoint intervals, threads, …) may change on a resume.
* **teacher**: an output that is, contains or lies inside the teacher's directory is refused, so a
  run can never replace or delete the model it learns from.

Example:
    >>> with RunDir("runs/student", {"method": "gan-slimming", "rho": 0.01}, teacher_path="runs/t/generator"):
    ...     ...
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ConfigError, GanCompressError, StorageError
from .files import atomic_write_json, check_writable

LOCK_NAME = ".gancompress.lock"
FINGERPRINT_NAME = "fingerprint.json"
FINGERPRINT_VERSION = 1

# Fields that say how far or how visibly a run goes, not what it computes: a resume may change them.
RESUMABLE_FIELDS = (
    "*max_steps",
    "*threads",
    "*num_workers",
    "*log_every",
    "*checkpoint_every",
    "*sample_every",
    "*num_samples",
    "*keep_last",
    "*on_nonfinite",
    "*max_rollbacks",
    "time_budget_s",
)

_HELD: dict[Path, int] = {}  # locks this process holds, with their nesting depth


class RunInUseError(GanCompressError):
    """Another live process holds the run directory's lock."""


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists and scalars are leaves, values made JSON-plain."""
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: json.loads(json.dumps(obj, default=str))}


def changed_fields(
    old: Mapping[str, Any], new: Mapping[str, Any], allowed: Iterable[str] = RESUMABLE_FIELDS
) -> list[str]:
    """``field: old -> new`` for every dotted key that differs, except those matching ``allowed``."""
    patterns = tuple(allowed)
    out = []
    for key in sorted(set(old) | set(new)):
        if any(fnmatch.fnmatchcase(key, p) for p in patterns):
            continue
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def _same_or_nested(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_not_teacher(out: Path, teacher_path: str | os.PathLike | None) -> None:
    """Refuse an output that is, contains or lies inside the teacher (a directory, or a file's folder)."""
    if teacher_path is None:
        return
    out_r = Path(out).expanduser().resolve()
    teacher = Path(teacher_path).expanduser().resolve()
    if teacher.is_dir() and _same_or_nested(out_r, teacher):
        raise ConfigError(
            f"--out {out}: it is, contains or lies inside the teacher's directory {teacher_path}; "
            "writing there would replace or delete the teacher. Choose another --out"
        )
    if not teacher.is_dir() and (out_r == teacher or out_r in teacher.parents):
        raise ConfigError(
            f"--out {out}: it is or contains the teacher file {teacher_path}. Choose another --out"
        )


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), so a reused PID is not taken for the lock's holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):  # a zombie: dead, only not yet reaped
        return "dead"
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    now = _proc_start(pid)
    if now == "dead":
        return False
    return start is None or now is None or now == start


class RunDir:
    """Context manager that locks ``path``, checks the recipe fingerprint and the teacher's place.

    ``recipe`` is any nested mapping of what determines the run's result. Only the process of rank 0
    (``RANK`` unset or 0) locks and writes; the other ranks of a data-parallel run share its directory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        recipe: Mapping[str, Any],
        teacher_path: str | os.PathLike | None = None,
        *,
        resume: bool = True,
        resume_anyway: bool = False,
        allowed_changes: Iterable[str] = RESUMABLE_FIELDS,
    ) -> None:
        self.path = Path(path)
        self.fingerprint = flatten(recipe)
        self.teacher_path = teacher_path
        self.resume = resume
        self.resume_anyway = resume_anyway
        self.allowed = tuple(allowed_changes)
        self._key: Path | None = None

    # -- lock ------------------------------------------------------------------------------------
    def _lock_record(self) -> dict[str, Any]:
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "start": _proc_start(pid), "since": time.time()}

    def _acquire(self) -> None:
        key = self.path.resolve()
        if key in _HELD:  # the same process nesting a run in its own directory
            _HELD[key] += 1
            self._key = key
            return
        lock = self.path / LOCK_NAME
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                self._check_holder(lock)
                continue
            except OSError as exc:
                raise StorageError(exc.errno, f"cannot lock {self.path}: {exc.strerror or exc}") from None
            try:
                os.write(fd, json.dumps(self._lock_record()).encode())
            except OSError as exc:
                os.close(fd)
                os.unlink(lock)
                raise StorageError(exc.errno, f"cannot lock {self.path}: {exc.strerror or exc}") from None
            os.close(fd)
            _HELD[key] = 1
            self._key = key
            return
        raise RunInUseError(f"{self.path}: cannot take the lock {lock} (another run keeps taking it)")

    def _check_holder(self, lock: Path) -> None:
        """Raise if the lock's holder is alive; remove the lock if it is gone (the caller retries)."""
        try:
            holder = json.loads(lock.read_text() or "{}")
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            holder = {}
        if not isinstance(holder, dict):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        since = holder.get("since")
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
            if isinstance(since, int | float)
            else "?"
        )
        if isinstance(pid, int) and host == socket.gethostname():
            if _alive(pid, holder.get("start")):
                raise RunInUseError(
                    f"{self.path} is in use by process {pid} on {host} (since {when}); wait for it to "
                    f"finish, or stop it. Two runs on one directory would mix their checkpoints"
                )
            print(
                f"gancompress: taking over the lock of {self.path} left by process {pid} on {host} "
                f"(since {when}), which is no longer running",
                file=sys.stderr,
            )
        elif isinstance(pid, int):
            raise RunInUseError(
                f"{self.path} is locked by process {pid} on host {host} (since {when}); if that run is "
                f"over, delete {lock}"
            )
        else:
            # Unreadable: a holder killed between creating and writing the file, or damage.
            age = time.time() - lock.stat().st_mtime if lock.exists() else 0.0
            if age < 5.0:
                time.sleep(0.2)
                if lock.exists() and lock.stat().st_size == 0:
                    raise RunInUseError(f"{self.path} is being locked by another run ({lock}); try again")
                return
            print(f"gancompress: replacing the unreadable lock {lock}", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)

    def _release(self) -> None:
        key = self._key
        if key is None:
            return
        self._key = None
        _HELD[key] -= 1
        if _HELD[key] > 0:
            return
        del _HELD[key]
        try:
            holder = json.loads((self.path / LOCK_NAME).read_text())
            if isinstance(holder, dict) and holder.get("pid") == os.getpid():
                os.unlink(self.path / LOCK_NAME)
        except (OSError, ValueError):
            pass

    # -- fingerprint -----------------------------------------------------------------------------
    def _check_fingerprint(self) -> None:
        path = self.path / FINGERPRINT_NAME
        stored: dict[str, Any] | None = None
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                stored = data.get("recipe") if isinstance(data, dict) else None
            except (OSError, ValueError):
                stored = None
            if not isinstance(stored, dict):
                raise ConfigError(
                    f"{path}: not a readable run fingerprint; pass --no-resume to start over or "
                    "--resume-anyway to continue with this recipe"
                )
        record: dict[str, Any] = {"version": FINGERPRINT_VERSION, "recipe": self.fingerprint}
        if stored is not None and self.resume and self._holds_results():
            changes = changed_fields(stored, self.fingerprint, self.allowed)
            if changes and not self.resume_anyway:
                shown = "; ".join(changes[:12]) + (
                    f"; … ({len(changes)} fields)" if len(changes) > 12 else ""
                )
                raise ConfigError(
                    f"{self.path} holds a run with another recipe ({shown}). Resuming would mix the two: pass "
                    "--no-resume to start over, --resume-anyway to continue with the new settings, or "
                    "another --out"
                )
            if changes:
                print(
                    f"gancompress: resuming {self.path} with changed settings: {'; '.join(changes)}",
                    file=sys.stderr,
                )
                try:
                    old = json.loads(path.read_text()).get("changes", [])
                except (OSError, ValueError, AttributeError):
                    old = []
                record["changes"] = [*old, {"at": time.time(), "fields": changes}]
            elif stored == self.fingerprint:
                return  # nothing to rewrite
        atomic_write_json(path, record)

    def _holds_results(self) -> bool:
        """Whether the directory holds anything a resume would continue from (not only its records)."""
        records = {LOCK_NAME, FINGERPRINT_NAME, "config.yaml", "recipe.yaml", "logs"}
        try:
            return any(p.name not in records and not p.name.startswith(".") for p in self.path.iterdir())
        except OSError:
            return False

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> RunDir:
        check_not_teacher(self.path, self.teacher_path)
        if os.environ.get("RANK", "0") not in ("", "0"):
            return self
        check_writable(self.path)
        self._acquire()
        try:
            self._check_fingerprint()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()


def teacher_fingerprint(teacher: Any) -> dict[str, Any]:
    """Family, widths, options and a SHA-256 of the weights of a generator (a retrained teacher differs)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key, value in sorted(teacher.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {
        "family": teacher.family,
        "arch": str(teacher.arch),
        "options": dict(teacher.options),
        "sha256": digest.hexdigest(),
    }


# MethodOptions fields that say where or how a run goes, not what it computes.
_NOT_RECIPE = ("recipe", "overrides", "resume", "resume_anyway", "device", "teacher_path")


def method_fingerprint(method: str, teacher: Any, options: Any) -> dict[str, Any]:
    """What determines a compression run: the method, the teacher, the recipe with overrides, the options."""
    import dataclasses

    from ..config import apply_overrides, load_yaml

    try:
        base = load_yaml(options.recipe) if options.recipe else {"builtin_recipe": True}
    except (UnicodeDecodeError, OSError, RecursionError) as exc:
        raise ConfigError(f"{options.recipe}: not a readable YAML recipe ({exc})") from None
    fields = {
        f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name not in _NOT_RECIPE
    }
    return {
        "method": method,
        "teacher": teacher_fingerprint(teacher) if teacher is not None else None,  # None: from scratch
        "recipe": apply_overrides(base, tuple(options.overrides)),
        **fields,
    }
