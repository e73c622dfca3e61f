"""What the verbs print: text by default, one strict JSON object with --json; progress on stderr."""

from __future__ import annotations

import json

import numpy as np

from gancompress.cli import main
from gancompress.training.commands import train_summary_text
from imagefiles import save


def tiny_paired(root):
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 3)):
        for i in range(n):
            save(root / split / f"{i}.png", rng.integers(0, 256, size=(32, 64, 3), dtype=np.uint8))
    return root


def test_train_summary_is_readable():
    summary = {
        "task": "pix2pix",
        "steps": 40,
        "train_images": 6,
        "kind": "paired",
        "data_root": "/data/fonts",
        "device": "cpu",
        "threads": 2,
        "wall_s": 12.3,
        "fit": {"start_step": 20},
        "eval": {"psnr": 21.5, "ssim": 0.8, "l1": 0.1, "images": 3, "split": "test"},
        "final_logs": {"loss_g": 1.25, "loss_d": 0.5},
        "generator": "/runs/t/generator",
    }
    text = train_summary_text(summary)
    assert "trained pix2pix for 40 steps, resumed from step 20 on 6 paired images" in text
    assert "PSNR 21.5" in text and "loss_g 1.25" in text and "/runs/t/generator" in text


def test_evaluate_text_json_and_progress(tmp_path, capsys):
    data = str(tiny_paired(tmp_path / "d"))
    argv = ["evaluate", "identity", "--data", data, "--extractors", "none", "--threads", "1"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "psnr" in out and "evaluate: generating the test split" in err and "3img" in err.replace(" ", "")
    assert main([*argv, "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["num_images"] == 3 and "evaluate:" not in err
