"""Real runs killed at random moments, then resumed, end with the weights of an uninterrupted run.

Each case is one ``gancompress`` command (teacher training, and ``compress`` with every method) on a
32-px paired folder with 4-8 channel networks. The command runs in a child process, which is sent
SIGKILL a random few milliseconds after a random checkpoint of one of its stages appears (or after a
random number of search candidates are cached); the same command is then started again, killed in
the next stage, and so on; the last start runs to the end. Every saved weight tensor must equal the
uninterrupted run's (CPU, one thread, fixed seeds). After each kill every complete checkpoint must
load and every JSON state file must parse: nothing half-written is ever visible.

The kill points come from a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from gancompress.cli import main
from gancompress.export.saved import save_generator
from gancompress.models import create_generator
from gancompress.training.checkpoint import list_checkpoints, load_checkpoint
from imagefiles import save

SIZE = 32
SEED = 20261123  # the kill points; fixed so that a failure reproduces
STAGE = {"epochs": 1, "decay_epochs": 1, "checkpoint_every": 1, "log_every": 1}
GC_SPACE = {"*": [1.0], "stem": [1.0, 0.5], "trunk": [0.5, 0.25], "hidden3": [1.0, 0.5], "up2": [1.0, 0.5]}
FGC_SPACE = {"*": [1.0, 0.5], "trunk": [0.5, 0.25]}
GS_SET = [
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "discriminator.base_width=4",
    "slim.train.max_steps=4",
    "slim.train.checkpoint_every=1",
    "finetune.max_steps=3",
    "finetune.checkpoint_every=1",
    "quant.calibration_images=4",
]
CORONET_SET = [
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "hypernet.embedding_dim=2",
    "discriminator.base_width=4",
    "prune.train.max_steps=4",
    "prune.train.checkpoint_every=1",
    "finetune.max_steps=3",
    "finetune.checkpoint_every=1",
    "prune.regularization=20.0",
    "prune.lr_latent=0.05",
]

# case -> the stages killed in turn: (checkpoint folder glob under --out, or "search")
KILLS = {
    "train-pix2pix": [".", "."],
    "train-cyclegan": ["."],
    "gan-compression": ["mobile_teacher", "supernet", "search"],  # fine-tuning: as Fast GAN Compression
    "fast-gan-compression": ["supernet", "search", "finetune/*"],
    "gan-slimming": ["slim", "finetune"],
    "coronet": ["prune", "finetune"],
}
CKPT = ("model.safetensors", "state.safetensors")
# case -> the saved weights compared with the uninterrupted run
OUTPUTS = {
    # a teacher run's last checkpoint: every trained network and the image pool (model), the
    # optimizers and the random generators (state)
    "train-pix2pix": ["generator/model.safetensors", *(f"checkpoints/step_0000006/{f}" for f in CKPT)],
    "train-cyclegan": ["generator/model.safetensors", *(f"checkpoints/step_0000006/{f}" for f in CKPT)],
    "gan-compression": ["generator/model.safetensors", "supernet/generator/model.safetensors"],
    "fast-gan-compression": ["generator/model.safetensors", "supernet/generator/model.safetensors"],
    "gan-slimming": ["generator/model.safetensors"],
    "coronet": ["generator/model.safetensors"],
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def forkserver():
    """Children forked from one clean server that imported the library once (no start-up per kill)."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # read by the server when it starts, at the first kill
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["cli_child", "gancompress.cli", "gancompress.methods", "torch"])
    yield ctx
    if before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = before


def _glyph(rng: np.random.Generator) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    y, x = rng.integers(4, 20, size=2)
    img[y : y + 10, x : x + 4] = 0
    return img


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A paired folder dataset, a saved teacher and the recipes, shared by every case."""
    root = tmp_path_factory.mktemp("kill")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 2)):
        for i in range(n):
            a = _glyph(rng)
            save(root / "paired" / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
            save(root / "unpaired" / f"{split}A" / f"{i}.png", a)
            save(root / "unpaired" / f"{split}B" / f"{i}.png", 255 - _glyph(rng))
    torch.manual_seed(0)
    save_generator(create_generator("resnet", base_width=8, num_blocks=3), root / "teacher")
    train = {
        "task": "pix2pix",
        "data": {"load_size": SIZE, "crop_size": SIZE, "preprocess": "resize", "flip": False},
        "generator": {"name": "resnet", "options": {"base_width": 4, "num_blocks": 3}},
        "discriminator": {"base_width": 4, "num_layers": 2, "norm": "instance"},
        "train": {
            "batch_size": 2,
            "epochs": 0,
            "decay_epochs": 0,
            "max_steps": 6,
            "decay_from_step": 3,
            "checkpoint_every": 1,
            "sample_every": 6,
            "log_every": 1,
            "num_samples": 2,
            "threads": 1,
        },
    }
    (root / "pix2pix.yaml").write_text(yaml.safe_dump(train))
    # CycleGAN: two generators, two discriminators and the image pool (a buffer whose size grows)
    train = dict(train, task="cyclegan", loss={"gan_mode": "lsgan", "pool_size": 3})
    (root / "cyclegan.yaml").write_text(yaml.safe_dump(train))
    for name, strategy, space, mobile in (
        ("gc", "exhaustive", GC_SPACE, True),
        ("fgc", "evolution", FGC_SPACE, False),
    ):
        recipe = {
            "version": 1,
            "task": "tiny",
            "data": {
                "load_size": SIZE,
                "crop_size": SIZE,
                "preprocess": "resize",
                "flip": False,
                "batch_size": 2,
                "holdout": 4,
            },
            "loss": {"recon": 10.0, "distill": 1.0, "gan": 1.0, "gan_mode": "hinge"},
            "discriminator": {"name": "patchgan", "base_width": 4, "num_layers": 2, "norm": "instance"},
            "supernet": {"search_space": space, "train": dict(STAGE, max_steps=4)},
            "search": {
                "strategy": strategy,
                "metric": "psnr",
                "ratio": 0.6,
                "population": 4,
                "generations": 2,
                "eval_batch_size": 4,
                "calibration_batches": 1,
            },
            "finetune": dict(STAGE, max_steps=3),
        }
        if mobile:
            recipe["mobile_teacher"] = {"train": dict(STAGE, max_steps=3)}
        (root / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    return {"root": root, "data": root / "paired", "teacher": root / "teacher"}


def command(case: str, files: dict[str, Path], out: Path) -> list[str]:
    root = files["root"]
    if case.startswith("train-"):
        task = case.removeprefix("train-")
        data = files["data"] if task == "pix2pix" else files["root"] / "unpaired"
        argv = ["train", "--task", task, "--data", str(data), "--out", str(out)]
        return argv + ["--recipe", str(root / f"{task}.yaml"), "--no-progress"]
    argv = ["compress", "--method", case, "--teacher", str(files["teacher"]), "--data", str(files["data"])]
    argv += ["--out", str(out)]
    if case == "gan-compression":
        return argv + ["--recipe", str(root / "gc.yaml")]
    if case == "fast-gan-compression":
        return argv + ["--recipe", str(root / "fgc.yaml")]
    sets = GS_SET if case == "gan-slimming" else CORONET_SET
    return argv + ["--quick", "--ratio", "0.5"] + [a for s in sets for a in ("--set", s)]


def weights(out: Path, case: str) -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(str(out / name)) for name in OUTPUTS[case]}


def newest_step(out: Path, stage: str) -> int:
    dirs = [out] if stage == "." else out.glob(stage)
    steps = [s for d in dirs for s, _ in list_checkpoints(d / "checkpoints")]
    return max(steps, default=0)


def cached(out: Path) -> int:
    path = out / "search_cache.json"
    return len(json.loads(path.read_text())["entries"]) if path.is_file() else 0


def stage_length(reference: Path, case: str, stage: str) -> int:
    """Steps of ``stage`` (or candidates scored, for the search) in the uninterrupted run."""
    summary = json.loads((reference / "summary.json").read_text())
    if case.startswith("train-"):
        return summary["steps"]
    method = summary["method_summary"]
    if stage == "search":
        return method["details"]["search"]["evaluations"]
    return method["stages"][stage.split("/")[0]]["steps"]


def check_nothing_half_written(out: Path) -> None:
    """Every complete checkpoint loads and every JSON file parses (temporary names aside)."""
    for ckpts in out.rglob("checkpoints"):
        for _, path in list_checkpoints(ckpts):
            load_checkpoint(path)
    for path in out.rglob("*.json"):
        if not any(part.startswith(".") for part in path.relative_to(out).parts):
            json.loads(path.read_text())


def kill_when(ctx, argv: list[str], reached, delay: float, timeout: float = 120.0) -> int | None:
    """Run ``argv`` in a child; SIGKILL it ``delay`` seconds after ``reached()`` holds. Its exit code."""
    import cli_child

    child = ctx.Process(target=cli_child.run, args=(argv,))
    child.start()
    deadline = time.monotonic() + timeout
    while child.is_alive() and time.monotonic() < deadline:
        if reached():
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    else:
        if child.is_alive():  # never leave a stuck child running
            child.kill()
            child.join(timeout)
            raise AssertionError(f"{' '.join(argv[:3])} did not reach its kill point in {timeout:.0f} s")
    child.join(timeout)
    return child.exitcode


def kill_points(rng: random.Random, reference: Path, case: str) -> list[tuple[str, int]]:
    """(stage, k) per kill: after checkpoint k of the stage, or after k cached search scores."""
    points = []
    stages = list(dict.fromkeys(KILLS[case]))
    for stage in stages:
        n = stage_length(reference, case, stage)
        # in the last stage killed, at least two steps stay to be done: the kill must land before the end
        last = n - 1 if stage == stages[-1] else n
        kills = KILLS[case].count(stage)
        assert last - 1 >= kills, f"{case}: stage {stage} has {n} steps, too few to kill inside {kills} times"
        points += [(stage, k) for k in sorted(rng.sample(range(1, last), kills))]
    return points


_references: dict[str, Path] = {}


def reference_run(case: str, files: dict[str, Path]) -> Path:
    """The uninterrupted run of ``case``, run once and shared by the test."""
    if case not in _references:
        out = files["root"] / "reference" / case
        assert main(command(case, files, out)) == 0
        _references[case] = out
    return _references[case]


@pytest.mark.parametrize("case", list(KILLS))
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(case, files, forkserver):
    reference = reference_run(case, files)
    out = files["root"] / "killed" / case
    argv = command(case, files, out)
    rng = random.Random(f"{SEED}-{case}")
    for stage, k in kill_points(rng, reference, case):
        if stage == "search":
            reached = lambda k=k: cached(out) >= k  # noqa: E731
        else:
            reached = lambda k=k, stage=stage: newest_step(out, stage) >= k  # noqa: E731
        code = kill_when(forkserver, argv, reached, delay=rng.uniform(0, 0.03))
        assert code == -signal.SIGKILL, f"{case}: the run was not killed in stage {stage} (exit {code})"
        assert not (out / "summary.json").exists()  # the kill landed before the end of the command
        check_nothing_half_written(out)
        if stage == "search":
            assert cached(out) >= k  # the scores computed before the kill survived it
    assert main(argv) == 0
    check_nothing_half_written(out)
    expected, got = weights(reference, case), weights(out, case)
    for name in expected:
        assert expected[name].keys() == got[name].keys(), name
        for key in expected[name]:
            assert torch.equal(expected[name][key], got[name][key]), f"{case}: {name} {key} differs"
    if not case.startswith("train-"):
        ref = json.loads((reference / "summary.json").read_text())
        assert json.loads((out / "summary.json").read_text())["student"]["arch"] == ref["student"]["arch"]
