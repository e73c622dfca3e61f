"""Every compression method trains its stages in bf16 (autocast on the CPU) and, through the loop's
GradScaler, in fp16: each Task backpropagates with ``gancompress.training.backward``."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from dist_workers import NO_GATE, TINY, tiny_teacher

from gancompress.data import build_font_dataset
from gancompress.methods import MethodOptions, compress
from gancompress.training import list_checkpoints, load_checkpoint


@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    return build_font_dataset(tmp_path_factory.mktemp("prec_data") / "paired", size=32, max_chars=20, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """fp16 autocast and the GradScaler on the CPU, which fit() refuses to users (CUDA only): the
    suite runs the loss-scaling path of every method without a GPU."""
    from gancompress.training import loop, precision
    from gancompress.training.precision import Precision

    def allow(name, device):
        return Precision(name, torch.device(device))

    monkeypatch.setattr(loop, "resolve_precision", allow)  # fit's check
    monkeypatch.setattr(precision, "resolve_precision", allow)  # compress's early check


def _stage_checkpoints(out):
    """The newest checkpoint of every training stage of a compress run."""
    found = [list_checkpoints(d)[-1][1] for d in sorted(out.rglob("checkpoints")) if list_checkpoints(d)]
    assert found
    return found


def _logged_losses(out) -> list[float]:
    values = []
    for log in out.rglob("train.csv"):
        with log.open() as f:
            for row in csv.DictReader(f):
                values += [float(v) for k, v in row.items() if k.startswith("loss") and v not in ("", None)]
    assert values
    return values


def _compress(method, fonts, out, precision):
    options = MethodOptions(quick=True, ratio=0.3, precision=precision, overrides=TINY[method] + NO_GATE)
    return compress(method, tiny_teacher(), fonts, out, options)


METHODS = [
    "fast-gan-compression",
    pytest.param("gan-compression", marks=pytest.mark.slow),
    "gan-slimming",
    "coronet",
]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_compresses_in_bf16_with_finite_losses_and_fp32_weights(method, fonts, tmp_path):
    result = _compress(method, fonts, tmp_path, "bf16")
    summary = json.loads((tmp_path / "method_summary.json").read_text())
    assert summary["precision"] == "bf16"
    assert all(math.isfinite(v) for v in _logged_losses(tmp_path))
    x = tiny_teacher().example_input((32, 32))
    with torch.no_grad():
        assert torch.isfinite(result.generator.eval()(x)).all()
    for ckpt in _stage_checkpoints(tmp_path):
        state = load_checkpoint(ckpt)
        assert "grad_scaler" not in state.state  # bf16 needs no loss scaling
        assert all(v.dtype == torch.float32 for v in state.model.values() if v.is_floating_point())


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_every_stage_through_the_fp16_grad_scaler(method, fonts, tmp_path, fp16_on_cpu):
    # ScaledOptimizer.step refuses a loss that did not go through the scaler, so finishing proves that
    # every backward of every stage is scaled; each stage's checkpoint carries the scaler's state.
    result = _compress(method, fonts, tmp_path, "fp16")
    assert all(math.isfinite(v) for v in _logged_losses(tmp_path))
    x = tiny_teacher().example_input((32, 32))
    with torch.no_grad():
        assert torch.isfinite(result.generator.eval()(x)).all()
    for ckpt in _stage_checkpoints(tmp_path):
        scaler = load_checkpoint(ckpt).state["grad_scaler"]
        assert 0 < scaler["scale"] <= 65536.0


def test_fp16_compress_on_the_cpu_is_refused_before_any_work_naming_bf16(fonts, tmp_path):
    from gancompress.errors import ConfigError

    with pytest.raises(ConfigError, match=r"precision fp16 needs a CUDA device.*use precision bf16"):
        _compress("coronet", fonts, tmp_path / "run", "fp16")
    run = tmp_path / "run"
    assert not (run / "recipe.yaml").exists() and not list(run.rglob("checkpoints"))  # before any work
