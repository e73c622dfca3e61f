"""bench/precision_fonts.py runs end to end at tiny size (``--quick``) and writes its comparison."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "precision_fonts.py"


@pytest.mark.slow
def test_precision_bench_quick_writes_psnr_of_each_precision_and_the_difference(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("precision_fonts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "report.json"
    assert module.main(["--quick", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["threads"] == 1 and report["device"] == "cpu"
    for section in ("teacher", "compress"):
        rows = report[section]["rows"]
        assert set(rows) == {"fp32", "bf16"}
        assert all(math.isfinite(r["psnr"]) for r in rows.values())
        delta = report[f"{section}_vs_fp32"]["bf16"]["delta_db"]
        assert delta == pytest.approx(rows["bf16"]["psnr"] - rows["fp32"]["psnr"])
    assert "teacher bf16 - fp32" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        module.main(["--quick", "--precisions", "bf16", "--out", str(out)])  # fp32 is the reference
