"""``gancompress train``: the run directory, the saved generator and its discriminator, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from gancompress.cli import main
from gancompress.export.saved import load_generator
from imagefiles import save

TINY_RECIPE = {
    "pix2pix": {
        "generator": {"name": "resnet", "options": {"base_width": 4, "num_blocks": 3}},
        "discriminator": {"base_width": 4, "num_layers": 2, "norm": "instance"},
    },
    "cyclegan": {
        "generator": {"name": "resnet", "options": {"base_width": 4, "num_blocks": 3}},
        "discriminator": {"base_width": 4, "num_layers": 2, "norm": "instance"},
        "loss": {"gan_mode": "lsgan", "pool_size": 4},
    },
}


def _glyph(rng, i):
    a = np.full((32, 32, 3), 255, np.uint8)
    a[8 + i % 8 : 24, 10:14] = 0
    return a, 255 - a  # B is the inverted A: a mapping a tiny net can learn


@pytest.fixture
def paired_root(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for i in range(n):
            a, b = _glyph(rng, i)
            save(tmp_path / "paired" / split / f"{i}.png", np.concatenate([a, b], axis=1))
    return tmp_path / "paired"


@pytest.fixture
def unpaired_root(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for i in range(n):
            a, b = _glyph(rng, i)
            save(tmp_path / "unpaired" / f"{split}A" / f"{i}.png", a)
            save(tmp_path / "unpaired" / f"{split}B" / f"{i}.png", b)
    return tmp_path / "unpaired"


def _recipe(tmp_path, task):
    data = {
        "task": task,
        "data": {"load_size": 32, "crop_size": 32, "preprocess": "resize", "flip": False},
        "train": {
            "batch_size": 2,
            "epochs": 0,
            "decay_epochs": 0,
            "max_steps": 4,
            "checkpoint_every": 2,
            "log_every": 1,
            "num_samples": 2,
        },
        **TINY_RECIPE[task],
    }
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_pix2pix_writes_the_run_directory_and_resumes(tmp_path, paired_root, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--task",
        "pix2pix",
        "--data",
        str(paired_root),
        "--out",
        str(out),
        "--recipe",
        str(_recipe(tmp_path, "pix2pix")),
        "--no-progress",
        "--json",
    ]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 4 and printed["eval"]["images"] == 3 and np.isfinite(printed["eval"]["psnr"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["task"] == "pix2pix" and config["resolved"]["max_steps"] == 4
    for name in (
        "logs/train.csv",
        "samples/step_0000004.png",
        "checkpoints/step_0000004/model.safetensors",
        "generator/config.json",
        "generator/discriminator.safetensors",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    g = load_generator(out / "generator")
    assert g(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    # the saved discriminator initialises GAN Compression's student discriminator
    from gancompress.methods.gan_compression.distill import build_discriminator
    from gancompress.methods.gan_compression.recipe import DiscriminatorConfig

    d_cfg = json.loads((out / "generator" / "discriminator.json").read_text())
    assert d_cfg["in_channels"] == 6 and d_cfg["conditional"] is True
    disc, note = build_discriminator(
        DiscriminatorConfig(base_width=4, num_layers=2, norm="instance", init_from=str(out / "generator")),
        3,
        3,
    )
    assert "initialised from" in note
    # a second run resumes from the final checkpoint and trains no further step
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"]["start_step"] == 4 and summary["fit"]["resumed_from"].endswith("step_0000004")
    assert [(r["start_step"], r["step"]) for r in summary["invocations"]] == [(0, 4), (4, 4)]


def test_train_cyclegan_on_unpaired_folders_scores_the_matching_test_split(tmp_path, unpaired_root, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--task",
        "cyclegan",
        "--data",
        str(unpaired_root),
        "--out",
        str(out),
        "--recipe",
        str(_recipe(tmp_path, "cyclegan")),
        "--no-progress",
        "--steps",
        "2",
        "--json",
    ]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["eval"]["images"] == 3
    assert load_generator(out / "generator").family == "resnet"


def test_unknown_recipe_key_names_the_key(tmp_path, paired_root, capsys):
    args = [
        "train",
        "--task",
        "pix2pix",
        "--data",
        str(paired_root),
        "--out",
        str(tmp_path / "x"),
        "--recipe",
        str(_recipe(tmp_path, "pix2pix")),
        "--set",
        "train.batchsize=2",
    ]
    assert main(args) == 2
    assert "batchsize" in capsys.readouterr().err


def test_task_must_match_the_recipe(tmp_path, paired_root, capsys):
    args = [
        "train",
        "--task",
        "cyclegan",
        "--data",
        str(paired_root),
        "--out",
        str(tmp_path / "x"),
        "--recipe",
        str(_recipe(tmp_path, "pix2pix")),
    ]
    assert main(args) == 2
    assert "--task" in capsys.readouterr().err


def test_every_shipped_recipe_loads():
    from pathlib import Path

    from gancompress.training.recipe import TASKS, default_recipe_path, load_train_recipe
    from gancompress.training.tasks import build_task

    recipes = sorted((Path(__file__).parents[2] / "configs" / "train").glob("*.yaml"))
    assert len(recipes) >= 7
    for path in recipes:
        r = load_train_recipe(path, ["loss.vgg=0"])
        assert path.name.startswith(r.task)
        with torch.device("meta"):  # shapes only: every recipe's networks can be built
            task = build_task(r, in_channels=9 if r.task == "gaugan" else 3, out_channels=3)
        assert task.generator().family == r.generator.name
    for task in ("pix2pix", "cyclegan"):
        assert default_recipe_path(task).is_file()
    assert set(TASKS) == {"pix2pix", "cyclegan", "gaugan", "munit"}


def test_train_precision_flag_reaches_the_recipe_and_fp16_is_refused_on_cpu(tmp_path, paired_root, capsys):
    base = [
        "train",
        "--task",
        "pix2pix",
        "--data",
        str(paired_root),
        "--recipe",
        str(_recipe(tmp_path, "pix2pix")),
    ]
    out = tmp_path / "bf16"
    assert main([*base, "--out", str(out), "--precision", "bf16", "--steps", "2", "--no-progress"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == "bf16"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "bf16" and np.isfinite(summary["eval"]["psnr"])
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "fp16"), "--precision", "fp16", "--no-progress"]) == 2
    assert "precision fp16 needs a CUDA device" in capsys.readouterr().err


def test_teacher_tasks_are_registered_and_the_registry_names_the_known_ones():
    from gancompress.errors import ConfigError
    from gancompress.training.tasks import TASK_FAMILIES, TEACHER_TASKS

    assert TEACHER_TASKS.list() == ["cyclegan", "gaugan", "munit", "pix2pix"]
    assert TASK_FAMILIES["pix2pix"] == ("resnet", "unet") and TASK_FAMILIES["gaugan"] == ("spade",)
    assert TEACHER_TASKS.get("pix2pix").conditional and not TEACHER_TASKS.get("cyclegan").conditional
    with pytest.raises(ConfigError, match="unknown teacher task 'pix3pix'; known: cyclegan, gaugan"):
        TEACHER_TASKS.get("pix3pix")
