"""GAN Compression's fixed-width pre-distillation stage (the official ``distill.sh``) at tiny size.

The chain is the official one: mobile teacher → a fixed-width student, initialised from the mobile
teacher's most important channels and distilled from it → the supernet, which starts from that
student's weights. Every run is real (training through ``fit``) on 32-px images, a ResNet teacher of
base width 8 with 3 blocks, a mobile teacher of base width 12 and a few steps per stage.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from gancompress.errors import ConfigError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.common.resume import weights_digest
from gancompress.models import create_generator
from gancompress.pruning import prune_by_importance
from imagefiles import save

SIZE = 32
STAGE = {"epochs": 1, "decay_epochs": 1, "checkpoint_every": 2, "log_every": 1}
STUDENT = "_".join(["8"] * 8)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    for i in range(10):
        a = np.full((SIZE, SIZE, 3), 255, np.uint8)
        y, x = rng.integers(4, 20, size=2)
        a[y : y + 10, x : x + 4] = 0
        save(root / "train" / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return create_generator("resnet", base_width=8, num_blocks=3)


def write_recipe(path, *, distill=None, supernet_steps=0):
    recipe = {
        "version": 1,
        "task": "tiny",
        "data": {"load_size": SIZE, "crop_size": SIZE, "preprocess": "resize", "flip": False, "batch_size": 2,
                 "holdout": 4},
        "loss": {"recon": 10.0, "distill": 1.0, "gan": 1.0, "gan_mode": "hinge"},
        "discriminator": {"name": "patchgan", "base_width": 4, "num_layers": 2, "norm": "instance"},
        "mobile_teacher": {"base_width": 12, "train": dict(STAGE, max_steps=2)},
        "supernet": {"search_space": {"*": [1.0, 0.5]}, "train": dict(STAGE, max_steps=supernet_steps)},
        "search": {"strategy": "evolution", "metric": "psnr", "population": 3, "generations": 1,
                   "eval_batch_size": 4, "calibration_batches": 1},
        "finetune": dict(STAGE, max_steps=0),
        "planner": {"probe_steps": 2},
    }  # fmt: skip
    if distill is not None:
        recipe["distill"] = distill
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pre_distillation_runs_resumes_and_the_supernet_starts_from_its_student(
    tmp_path, paired_root, teacher
):
    out = tmp_path / "run"
    distill = {"student_ngf": 8, "train": dict(STAGE, max_steps=2)}
    recipe = write_recipe(tmp_path / "recipe.yaml", distill=distill)
    summary = compress(
        "gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, ratio=0.9)
    ).summary

    # the stage is planned and trained between the mobile teacher and the supernet
    assert list(summary["plan"]["stages"]) == ["mobile_teacher", "distill"]  # supernet, finetune: 0 steps
    assert summary["plan"]["stages"]["distill"]["steps"] == 2
    assert summary["stages"]["distill"]["trained_steps"] == 2
    assert summary["notes"]["distill"].startswith(f"fixed-width student {STUDENT} from the mobile teacher's")
    assert summary["notes"]["distill_discriminator"] == "continued from the previous stage"

    # it starts from the mobile teacher's most important channels (official weight transfer) ...
    mobile = load_generator(out / "mobile_teacher" / "generator")
    assert str(mobile.arch) == "_".join(["12"] * 8)
    start = prune_by_importance(mobile, STUDENT)
    record = json.loads((out / "distill" / "inputs.json").read_text())
    assert record["student"] == STUDENT and record["start"] == weights_digest(start)
    # ... and is trained away from them
    student = load_generator(out / "distill" / "generator")
    assert str(student.arch) == STUDENT and student.options["separable"] is True
    assert not states_equal(student, start)
    # the supernet (not trained in this run) holds exactly the distilled student's weights
    supernet = load_generator(out / "supernet" / "generator")
    assert states_equal(supernet, student)

    # resumed with the supernet trained: the finished distill stage is not trained again, and the
    # supernet records the distilled weights it starts from
    recipe = write_recipe(tmp_path / "recipe.yaml", distill=distill, supernet_steps=2)
    again = compress(
        "gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, ratio=0.9)
    ).summary
    assert again["stages"]["distill"]["trained_steps"] == 0
    assert again["stages"]["supernet"]["trained_steps"] == 2
    supernet_record = json.loads((out / "supernet" / "inputs.json").read_text())
    assert supernet_record["start"] == weights_digest(student)

    # a longer distill stage resumes from its checkpoint; the supernet then starts over from the new student
    longer = {"student_ngf": 8, "train": dict(STAGE, max_steps=4)}
    recipe = write_recipe(tmp_path / "recipe.yaml", distill=longer, supernet_steps=2)
    third = compress(
        "gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, ratio=0.9)
    ).summary
    assert third["stages"]["distill"]["trained_steps"] == 2
    assert third["stages"]["distill"]["resumed_from"] is not None
    assert "supernet_restarted" in third["notes"]
    assert third["stages"]["supernet"]["trained_steps"] == 2

    # another student width is refused by the stage's record, naming the field
    other = {"student_ngf": 10, "train": dict(STAGE, max_steps=4)}
    recipe = write_recipe(tmp_path / "recipe.yaml", distill=other, supernet_steps=2)
    with pytest.raises(ConfigError, match="distill/inputs.json: .*student='8_8_8_8_8_8_8_8'"):
        compress(
            "gan-compression", teacher, paired_root, out,
            MethodOptions(recipe=recipe, ratio=0.9, resume_anyway=True),
        )  # fmt: skip


@pytest.mark.parametrize(
    "method,distill,match",
    [
        (
            "gan-compression",
            {"student_ngf": 16},
            r"distill.student_ngf: the student 16_.* is wider than the mobile",
        ),
        ("gan-compression", {"student_ngf": 6}, r"distill.student_ngf: .*largest widths 8_.* are wider"),
        ("fast-gan-compression", {"student_ngf": 8}, r"distill: the fixed-width pre-distillation is a GAN"),
    ],
)
def test_bad_distill_blocks_fail_before_training(tmp_path, paired_root, teacher, method, distill, match):
    recipe = write_recipe(tmp_path / "recipe.yaml", distill={**distill, "train": dict(STAGE, max_steps=2)})
    with pytest.raises(ConfigError, match=match):
        compress(method, teacher, paired_root, tmp_path / "run", MethodOptions(recipe=recipe, ratio=0.9))
    assert not (tmp_path / "run" / "mobile_teacher").exists()


def test_without_a_distill_block_the_supernet_starts_from_the_pruned_mobile_teacher(
    tmp_path, paired_root, teacher
):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "run"
    summary = compress(
        "gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, ratio=0.9)
    ).summary
    assert summary["notes"]["distill"].startswith("no distill block in the recipe")
    assert "distill" not in summary["stages"] and not (out / "distill").exists()
    mobile = load_generator(out / "mobile_teacher" / "generator")
    assert states_equal(load_generator(out / "supernet" / "generator"), prune_by_importance(mobile, STUDENT))
