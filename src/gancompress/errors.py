"""The project's own error types.

Every error a user can cause (a bad file, a bad field, a bad option) is raised as one of these, with a
message that names the file or the field, so callers can catch ``GanCompressError`` and nothing else.
"""

from __future__ import annotations


class GanCompressError(Exception):
    """Base class of every error gancompress raises on purpose.

    The command line prints its message (one line, naming the file, field or option) and exits with
    ``exit_code``: 2 for bad input; a subclass for another kind of failure may set its own.
    """

    exit_code: int = 2


class ConfigError(GanCompressError, ValueError):
    """A configuration value or file is malformed (unknown key, wrong type, out of range)."""


class ArchSpecError(ConfigError):
    """An architecture string or ArchSpec does not fit its generator family."""


class CheckpointError(GanCompressError):
    """A saved model or checkpoint cannot be read, or does not match the network it is loaded into."""


class DataError(GanCompressError):
    """A dataset folder or image is missing, unreadable or inconsistent."""


class BudgetError(GanCompressError):
    """A MACs or latency budget that no candidate network can meet."""


class StorageError(GanCompressError, OSError):
    """An output cannot be written (read-only or full disk); earlier files are left intact."""


class QualityGateError(GanCompressError):
    """A compressed generator failed its quality gate (non-finite, constant, or worse than copying)."""
