"""The child side of the kill tests: run the real ``gancompress`` command line, then exit with its code.

A plain module (not a test file) so that a forkserver child can import it by name.
"""

from __future__ import annotations

import os
import sys


def run(argv: list[str]) -> None:
    """``gancompress ARGV`` on one thread, its output discarded, exiting with the command's code."""
    import torch

    from gancompress.cli import main

    torch.set_num_threads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.exit(main(argv))
