"""Non-finite model outputs through the command line: a named error in bounded time, never a hang.

B4: a saved generator whose weights hold NaN given to ``evaluate`` (scipy's ``sqrtm`` used to spin
on the NaN covariance without end), ``benchmark`` (with and without its int8 row: ONNX Runtime's
calibrator failed with ``AssertionError: scale issue``) and ``export --formats int8``: exit code 2,
the model named, no traceback, well within the child process's time limit. The metric functions
themselves refuse NaN statistics and features at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gancompress.data import build_font_dataset
from gancompress.export.saved import save_generator
from gancompress.metrics.fid import FeatureStats, frechet_distance, kernel_distance
from gancompress.models import create_generator

SRC = Path(__file__).resolve().parents[2] / "src"
LIMIT_S = 240  # the child is killed past this: a hang fails the test instead of blocking the suite


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nonfinite")
    torch.manual_seed(0)
    g = create_generator("resnet", base_width=4, num_blocks=3)
    with torch.no_grad():
        next(iter(g.parameters())).fill_(float("nan"))
    save_generator(g, root / "nan_generator")
    data = build_font_dataset(root / "fonts", size=32, max_chars=8, seed=3)
    return {"root": root, "model": root / "nan_generator", "data": Path(data)}


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "gancompress.cli", *argv],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        env=env,
    )


def assert_named(proc: subprocess.CompletedProcess, *names: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "NaN" in proc.stderr, proc.stderr[-3000:]
    for name in names:
        assert name in proc.stderr, proc.stderr[-3000:]


def test_evaluate_a_nan_generator_names_it(cases):
    proc = run_cli(
        "evaluate",
        str(cases["model"]),
        "--data",
        str(cases["data"]),
        "--extractors",
        "domain",
        "--size",
        "32",
    )
    assert_named(proc, f"the outputs of {cases['model']}")


@pytest.mark.parametrize("int8", [True, False], ids=["int8", "no-int8"])
def test_benchmark_of_a_nan_generator_names_it(cases, int8):
    out = cases["root"] / f"bench-{int8}"
    argv = ["benchmark", "--teacher", str(cases["model"]), "--data", str(cases["data"]), "--out", str(out)]
    argv += ["--quick", "--runtimes", "eager", "--threads", "1", "--max-images", "4"]
    proc = run_cli(*argv, *([] if int8 else ["--no-int8"]))
    assert_named(proc, str(out / "models" / "teacher" / "model.onnx") if int8 else str(cases["model"]))


def test_export_int8_of_a_nan_generator_names_it(cases):
    out = cases["root"] / "exported"
    proc = run_cli(
        "export", str(cases["model"]), "--out", str(out), "--formats", "int8", "--data", str(cases["data"])
    )
    assert_named(proc, "model.onnx", "calibration input 0")


def test_the_metric_functions_refuse_non_finite_values_at_once():
    from gancompress.metrics.finite import NonFiniteError

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(16, 4))
    stats = FeatureStats.from_features(feats)
    sigma = stats.sigma.copy()
    sigma[1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="covariances hold 1 NaN"):
        frechet_distance(stats.mu, stats.sigma, stats.mu, sigma)
    bad = feats.copy()
    bad[3, 1] = np.inf
    with pytest.raises(NonFiniteError, match="1 infinite"):
        FeatureStats.from_features(bad)
    with pytest.raises(NonFiniteError, match="generated feature vectors"):
        kernel_distance(feats, bad)
