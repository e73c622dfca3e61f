"""Compression methods behind one small protocol (see ``base``)."""

from . import (
    cat,  # noqa: F401
    coronet,  # noqa: F401
    gan_compression,  # noqa: F401
    gan_slimming,  # noqa: F401
    omgd,  # noqa: F401
)
from .base import (
    METHODS,
    CompressionResult,
    MethodOptions,
    compress,
    list_methods,
    method_status,
    register_method,
)

__all__ = [
    "METHODS",
    "CompressionResult",
    "MethodOptions",
    "compress",
    "list_methods",
    "method_status",
    "register_method",
]
