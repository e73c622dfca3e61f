"""A pytest plugin that breaks resuming on purpose: optimizers ignore the state a checkpoint restores.

The kill test must fail under it, which shows that its comparison can detect an inexact resume::

    PYTHONPATH=tests/reliability .venv/bin/python -m pytest -p no:xdist -p forgetful_resume \\
        tests/reliability/test_kill_resume.py -k "slimming or train"
"""

import torch


def _forget(self, state_dict):  # noqa: ANN001 - replaces Optimizer.load_state_dict
    return None


def pytest_configure(config):  # noqa: ANN001 - pytest hook
    torch.optim.Optimizer.load_state_dict = _forget
