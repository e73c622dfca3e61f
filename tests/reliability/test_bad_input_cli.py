"""Bad input and bad output folders through the command line: a clear error naming the file or the
field (exit code 2, no traceback), and nothing lost or half-written.

Covered here end to end (``gancompress train`` / ``compress`` / ``profile``): corrupt, truncated and
empty images; mixed sizes and channel counts; a teacher whose channels do not fit the data; missing
folders; an empty dataset; unknown recipe keys and wrong types; an ArchSpec that does not fit its
family; budgets no subnet can meet (each method names the smallest reachable MACs); an output folder
that cannot be created, is read-only, or fills up during a run (earlier checkpoints and the saved
generator stay intact). The library-level tests of the same cases live beside each module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gancompress.cli import main
from gancompress.export.saved import load_generator, save_generator
from gancompress.models import create_generator
from gancompress.training.checkpoint import list_checkpoints, load_checkpoint
from imagefiles import save

SIZE = 32
QUICK = [
    "--quick",
    *("--set", "data.load_size=32", "--set", "data.crop_size=32"),
    *("--set", "data.batch_size=2", "--set", "data.holdout=2"),
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _glyph(rng: np.random.Generator) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    y, x = rng.integers(4, 20, size=2)
    img[y : y + 10, x : x + 4] = 0
    return img


def make_dataset(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for split, k in (("train", n), ("test", 2)):
        for i in range(k):
            a = _glyph(rng)
            save(root / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    recipe = {
        "task": "pix2pix",
        "data": {"load_size": SIZE, "crop_size": SIZE, "preprocess": "resize", "flip": False},
        "generator": {"name": "resnet", "options": {"base_width": 4, "num_blocks": 3}},
        "discriminator": {"base_width": 4, "num_layers": 2, "norm": "instance"},
        "train": {
            "batch_size": 2,
            "epochs": 0,
            "decay_epochs": 0,
            "max_steps": 3,
            "checkpoint_every": 1,
            "log_every": 1,
            "num_samples": 2,
            "threads": 1,
        },
    }
    (root / "train.yaml").write_text(yaml.safe_dump(recipe))
    torch.manual_seed(0)
    save_generator(create_generator("resnet", base_width=4, num_blocks=3), root / "teacher")
    return {
        "root": root,
        "recipe": root / "train.yaml",
        "teacher": root / "teacher",
        "data": make_dataset(root / "ok"),
    }


def train(shared, data: Path, out: Path, *extra: str) -> int:
    argv = [
        "train",
        "--task",
        "pix2pix",
        "--data",
        str(data),
        "--out",
        str(out),
        "--recipe",
        str(shared["recipe"]),
    ]
    return main([*argv, "--no-progress", *extra])


def compress(shared, method: str, data: Path, out: Path, *extra: str, teacher: Path | None = None) -> int:
    argv = [
        "compress",
        "--method",
        method,
        "--teacher",
        str(teacher or shared["teacher"]),
        "--data",
        str(data),
    ]
    return main([*argv, "--out", str(out), *extra])


def error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def assert_nothing_half_written(out: Path) -> None:
    """Complete checkpoints load, no temporary checkpoint is left, and no generator was saved."""
    for ckpts in out.rglob("checkpoints"):
        for _, path in list_checkpoints(ckpts):
            load_checkpoint(path)
        assert not list(ckpts.glob(".step_*")), list(ckpts.iterdir())
    assert not (out / "generator").exists() and not (out / "student").exists()


# -- images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(os.urandom(300)), id="not-an-image"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:70]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty-file"),
    ],
)
def test_damaged_image_is_named_and_a_fixed_folder_resumes(tmp_path, shared, capsys, damage):
    data = make_dataset(tmp_path / "data")
    bad = data / "train" / "4.png"
    damage(bad)
    out = tmp_path / "run"
    assert train(shared, data, out) == 2
    assert str(bad) in error(capsys)
    assert_nothing_half_written(out)
    # the user removes the file and runs the same command: it resumes from the last good checkpoint
    done = [s for s, _ in list_checkpoints(out / "checkpoints")]
    bad.unlink()
    assert train(shared, data, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"]["start_step"] == (done[-1] if done else 0) and summary["steps"] == 3
    assert load_generator(out / "generator").family == "resnet"


def test_mixed_sizes_and_channel_counts_are_converted(tmp_path, shared):
    """Grayscale, palette and RGBA files and pairs of other sizes are read as RGB at the recipe's size."""
    data = make_dataset(tmp_path / "data")
    rng = np.random.default_rng(1)
    save(data / "train" / "gray.png", rng.integers(0, 256, (40, 80), dtype=np.uint8), "L")
    save(data / "train" / "rgba.png", rng.integers(0, 256, (64, 128, 4), dtype=np.uint8), "RGBA")
    save(data / "train" / "odd.png", rng.integers(0, 256, (31, 66, 3), dtype=np.uint8))
    assert train(shared, data, tmp_path / "run") == 0
    assert load_generator(tmp_path / "run" / "generator").options["in_channels"] == 3


def test_teacher_channels_that_do_not_fit_the_data_fail_before_training(tmp_path, shared, capsys):
    torch.manual_seed(0)
    teacher = save_generator(
        create_generator("resnet", base_width=4, num_blocks=3, in_channels=1), tmp_path / "t1"
    )
    out = tmp_path / "run"
    code = compress(shared, "coronet", shared["data"], out, "--ratio", "0.5", *QUICK, teacher=teacher)
    assert code == 2
    err = error(capsys)
    assert str(shared["data"]) in err and "input has 1 channels" in err and "have 3" in err
    assert not list(out.rglob("checkpoints"))


# -- folders ---------------------------------------------------------------------------------------
def test_missing_folder_and_empty_dataset_are_named(tmp_path, shared, capsys):
    missing = tmp_path / "nowhere"
    assert train(shared, missing, tmp_path / "a") == 2
    assert str(missing) in error(capsys)
    assert compress(shared, "gan-slimming", missing, tmp_path / "b", *QUICK) == 2
    assert str(missing) in error(capsys)
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    assert train(shared, empty, tmp_path / "c") == 2
    assert f"{empty / 'train'} contains no images" in error(capsys)
    assert compress(shared, "fast-gan-compression", empty, tmp_path / "d", "--ratio", "0.5", *QUICK) == 2
    assert f"{empty / 'train'} contains no images" in error(capsys)
    for out in "abcd":
        assert not list((tmp_path / out).rglob("checkpoints"))


# -- configuration -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command, setting, message",
    [
        ("train", "train.bogus=1", r"train\.yaml\.train: unknown key\(s\) \['bogus'\]"),
        ("train", "train.batch_size=abc", r"train\.yaml\.train\.batch_size: expected an integer, got 'abc'"),
        ("train", "optim.lr_g=-1", r"optim\.lr_g must be positive"),
        (
            "compress",
            "supernet.bogus=1",
            r"fast_gan_compression/fonts\.yaml\.supernet: unknown key\(s\) \['bogus'\]",
        ),
        ("compress", "search.population=many", r"search\.population: expected an integer, got 'many'"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_field(tmp_path, shared, capsys, command, setting, message):
    out = tmp_path / "run"
    if command == "train":
        code = train(shared, shared["data"], out, "--set", setting)
    else:
        code = compress(
            shared, "fast-gan-compression", shared["data"], out, "--ratio", "0.5", "--set", setting
        )
    assert code == 2
    assert re.search(message, error(capsys))
    assert not list(out.rglob("checkpoints"))


def test_scientific_notation_is_a_number_in_overrides_and_recipes(tmp_path, shared):
    """``--set optim.lr_g=2e-4`` (the documented form) and ``lr_d: 1e-4`` in a recipe are numbers."""
    recipe = yaml.safe_load(shared["recipe"].read_text())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe).replace("train:", "optim: {lr_d: 1e-4}\ntrain:", 1))
    out = tmp_path / "run"
    argv = [
        "train",
        "--task",
        "pix2pix",
        "--data",
        str(shared["data"]),
        "--out",
        str(out),
        "--recipe",
        str(path),
    ]
    assert main([*argv, "--no-progress", "--steps", "1", "--set", "optim.lr_g=2e-4"]) == 0
    used = yaml.safe_load((out / "config.yaml").read_text())["optim"]
    assert used["lr_g"] == 2e-4 and used["lr_d"] == 1e-4


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_non_finite_loss_names_the_step_and_the_last_good_checkpoint(tmp_path, shared, capsys, policy):
    out = tmp_path / "run"
    huge = ["--set", "optim.lr_g=1e38", "--set", "optim.lr_d=1e38", "--set", f"train.on_nonfinite={policy}"]
    assert train(shared, shared["data"], out, *huge) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert re.search(r"non-finite loss at step \d+", captured.err)
    if policy == "stop":
        assert (
            "no checkpoint was written yet" in captured.err and "train.on_nonfinite=rollback" in captured.err
        )
    else:  # rolled back three times, each time with half the learning rate, then gave up
        assert "after 3 rollbacks" in captured.err
        assert f"the last good checkpoint is {out / 'checkpoints'}" in captured.err
        assert "with learning rates x0.125" in captured.out
    assert_nothing_half_written(out)


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_non_finite_loss_in_a_compression_stage(tmp_path, shared, capsys, policy):
    out = tmp_path / "run"
    huge = [f"prune.train.{k}" for k in ("lr_g=1e38", "lr_d=1e38", f"on_nonfinite={policy}")]
    argv = ["--ratio", "0.5", *QUICK, *(a for k in huge for a in ("--set", k))]
    assert compress(shared, "coronet", shared["data"], out, *argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and re.search(r"non-finite loss at step \d+", captured.err)
    if policy == "stop":
        assert "supernet.train.on_nonfinite=rollback" in captured.err
    else:
        assert "after 3 rollbacks" in captured.err and "with learning rates x0.125" in captured.out
    assert_nothing_half_written(out)


def test_archspec_that_does_not_fit_its_family_is_named(tmp_path, shared, capsys):
    assert train(shared, shared["data"], tmp_path / "a", "--set", 'generator.options.arch="4_4"') == 2
    assert "'resnet' architecture '4_4' has 2 widths; this family takes 8" in error(capsys)
    assert main(["profile", "unet", "--arch", "8_8_x"]) == 2
    assert "8_8_x" in error(capsys)
    space = "supernet.search_space={bogus: [1.0]}"
    assert (
        compress(
            shared, "fast-gan-compression", shared["data"], tmp_path / "b", "--ratio", "0.5", "--set", space
        )
        == 2
    )
    err = error(capsys)
    assert "supernet.search_space: groups of 'resnet'" in err and "unknown ['bogus']" in err
    assert not list(tmp_path.rglob("checkpoints"))


def test_images_too_small_for_the_networks_name_the_size(tmp_path, shared, capsys):
    tiny = ("--set", "data.load_size=2", "--set", "data.crop_size=2")
    assert train(shared, shared["data"], tmp_path / "a", *tiny) == 2
    assert "data.crop_size: the networks cannot run on 2x2 images" in error(capsys)
    assert compress(shared, "coronet", shared["data"], tmp_path / "b", "--ratio", "0.5", *QUICK, *tiny) == 2
    assert "a resnet generator cannot run on a (2, 2) input" in error(capsys)
    assert main(["profile", "unet", "--size", "3", "5"]) == 2
    assert "a unet generator cannot run on a (3, 5) input" in error(capsys)
    assert main(["profile", "resnet", "--size", "0", "4"]) == 2
    # profile counts on the meta device, so its sides may reach 10^6 (other verbs: 4096)
    assert "argument --size: '0': each side must be a whole number in [1, 1000000]" in error(capsys)
    assert not list(tmp_path.rglob("checkpoints"))


@pytest.mark.parametrize("method", ["fast-gan-compression", "gan-compression", "gan-slimming", "coronet"])
def test_budget_no_subnet_meets_fails_before_training_naming_the_smallest_reachable(
    tmp_path, shared, capsys, method
):
    out = tmp_path / "run"
    assert compress(shared, method, shared["data"], out, "--budget-macs", "1000", *QUICK) == 2
    err = error(capsys)
    # every method names the MACs of its smallest network (all are far above 1000)
    numbers = [float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?(?:e\+\d+)?", err)]
    assert "MACs" in err and max(numbers) > 1e5, err
    assert not list(out.rglob("checkpoints"))


# -- output folders ------------------------------------------------------------------------------------
def test_output_path_that_cannot_be_created_fails_before_any_work(tmp_path, shared, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert train(shared, shared["data"], blocker / "run") == 2
    assert f"output directory {blocker / 'run'} is not writable" in error(capsys)
    assert compress(shared, "coronet", shared["data"], blocker / "run", "--ratio", "0.5", *QUICK) == 2
    assert f"output directory {blocker / 'run'} is not writable" in error(capsys)


@contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs at ``path`` (real ENOSPC and EROFS); the test is skipped where mounting is not allowed."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _snapshot(out: Path) -> dict[str, bytes]:
    keep = [p for p in out.rglob("*") if p.is_file() and ("checkpoints" in p.parts or "generator" in p.parts)]
    return {str(p.relative_to(out)): p.read_bytes() for p in keep}


def test_read_only_output_fails_early_and_keeps_the_earlier_run(tmp_path, shared, capsys):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        assert train(shared, shared["data"], out) == 0
        before = _snapshot(out)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        assert train(shared, shared["data"], out, "--steps", "5") == 2
        assert f"output directory {out} is not writable: Read-only file system" in error(capsys)
        assert compress(shared, "coronet", shared["data"], disk / "c", "--ratio", "0.5", *QUICK) == 2
        assert "Read-only file system" in error(capsys)
        assert _snapshot(out) == before


def test_full_disk_stops_cleanly_and_keeps_earlier_checkpoints(tmp_path, shared, capsys):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "run"
        assert train(shared, shared["data"], out) == 0
        before = _snapshot(out)
        # leave room for the logs and a sample grid, but not for the next checkpoint's weights
        checkpoint = (out / "checkpoints" / "step_0000003" / "model.safetensors").stat().st_size
        stat = os.statvfs(disk)
        with open(disk / "filler", "wb") as fh:
            fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - checkpoint // 2))
        assert train(shared, shared["data"], out, "--steps", "6") == 2
        assert "No space left on device" in error(capsys)
        assert _snapshot(out) == before  # the three checkpoints and the saved generator, byte for byte
        assert_nothing_half_written_checkpoints(out)
        # space freed, the same command resumes from step 3
        (disk / "filler").unlink()
        assert train(shared, shared["data"], out, "--steps", "6") == 0
        assert json.loads((out / "summary.json").read_text())["fit"]["start_step"] == 3


def assert_nothing_half_written_checkpoints(out: Path) -> None:
    for _, path in list_checkpoints(out / "checkpoints"):
        load_checkpoint(path)
    assert not list((out / "checkpoints").glob(".step_*"))


def test_full_disk_during_compress_stops_cleanly_and_keeps_the_earlier_stage(tmp_path, shared, capsys):
    steps = (
        "--set",
        "finetune.max_steps=1",
        "--set",
        "prune.train.checkpoint_every=1",
        "--set",
        "prune.train.epochs=4",
    )
    with tmpfs(tmp_path / "disk", "32m") as disk:
        out = disk / "run"
        argv = ["--ratio", "0.5", *QUICK, *steps]
        assert (
            compress(shared, "coronet", shared["data"], out, *argv, "--set", "prune.train.max_steps=2") == 0
        )
        keep = [p for p in out.rglob("*") if p.is_file() and ({"checkpoints", "student"} & set(p.parts))]
        before = {p: p.read_bytes() for p in keep}
        checkpoint = max(p.stat().st_size for p in keep if p.name == "model.safetensors")
        stat = os.statvfs(disk)
        with open(disk / "filler", "wb") as fh:
            fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - checkpoint // 2))
        # more pruning steps: the stage resumes from step 2, and its next checkpoint does not fit
        assert (
            compress(shared, "coronet", shared["data"], out, *argv, "--set", "prune.train.max_steps=4") == 2
        )
        assert "No space left on device" in error(capsys)
        assert {p: p.read_bytes() for p in keep} == before
        assert not list(out.rglob(".step_*"))
        (disk / "filler").unlink()
        assert (
            compress(shared, "coronet", shared["data"], out, *argv, "--set", "prune.train.max_steps=4") == 0
        )
        summary = json.loads((out / "method_summary.json").read_text())
        assert summary["stages"]["prune"]["trained_steps"] == 2
