"""bench/vs_teacher.py: every student scored against the teacher on the test split, with the gate's verdict."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from gancompress.export.saved import save_generator
from gancompress.models import create_generator

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "vs_teacher.py"


def load_script():
    spec = importlib.util.spec_from_file_location("vs_teacher", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_students_are_scored_against_the_teacher_and_a_constant_one_fails(tmp_path, fonts32):
    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    save_generator(teacher, tmp_path / "teacher")
    save_generator(teacher, tmp_path / "same")  # the teacher itself: infinite PSNR against it, passes
    flat = create_generator("resnet", base_width=4, num_blocks=3)
    with torch.no_grad():
        for p in flat.parameters():
            p.zero_()  # a constant output: the gate must fail it
    save_generator(flat, tmp_path / "flat")
    out = tmp_path / "vs.json"
    rc = load_script().main(
        ["--teacher", str(tmp_path / "teacher"), "--data", str(fonts32), "--size", "32", "--max-images", "8",
         "--student", f"same={tmp_path / 'same'}", "--student", f"flat={tmp_path / 'flat'}", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["same"]["passed"] is True
    assert rows["same"]["scores"]["student_vs_teacher"]["psnr"] > 60
    assert rows["flat"]["passed"] is False and rows["flat"]["reasons"]
    doc = json.loads(out.read_text())
    assert doc["environment"]["images"] == 8 and doc["environment"]["size"] == 32
