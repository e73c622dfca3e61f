"""GAN Compression and Fast GAN Compression end to end at tiny sizes, through ``compress`` and the CLI.

Every run is a real one (training through ``fit``, search, fine-tuning, export) on 32-px images, a
ResNet teacher of base width 8 with 3 blocks, and a few steps per stage.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from gancompress.cli import main
from gancompress.errors import BudgetError, ConfigError, DataError
from gancompress.export.saved import load_generator, save_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.gan_compression.search import MacsTable
from gancompress.methods.gan_compression.search_space import SearchSpace
from gancompress.methods.gan_compression.supernet import build_supernet
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_discriminator, create_generator
from imagefiles import save

SIZE = 32
STAGE = {"epochs": 1, "decay_epochs": 1, "checkpoint_every": 2, "log_every": 1}
SPACE = {"*": [1.0, 0.5], "trunk": [0.5, 0.25]}
# 16 archs, few enough to enumerate quickly
SMALL_SPACE = {"*": [1.0], "stem": [1.0, 0.5], "trunk": [0.5, 0.25], "hidden3": [1.0, 0.5], "up2": [1.0, 0.5]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convolutions gain nothing from a second thread, and lose a lot on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _glyph(rng: np.random.Generator) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    y, x = rng.integers(4, 20, size=2)
    img[y : y + 10, x : x + 4] = 0
    return img


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 2)):
        for i in range(n):
            a = _glyph(rng)
            save(root / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return create_generator("resnet", base_width=8, num_blocks=3)


def write_recipe(path, *, strategy="evolution", mobile=False, space=SPACE, **search):
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
        "supernet": {
            "search_space": space,
            "train": dict(STAGE, max_steps=4),
        },
        "search": {
            "strategy": strategy,
            "metric": "psnr",
            "population": 4,
            "generations": 2,
            "eval_batch_size": 4,
            "calibration_batches": 1,
            "latency_repeats": 2,
            "latency_warmup": 1,
            **search,
        },
        "finetune": dict(STAGE, max_steps=2),
    }
    if mobile:
        recipe["mobile_teacher"] = {"train": dict(STAGE, max_steps=2)}
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def macs_of(teacher, spec: str, space=SPACE) -> int:
    space = SearchSpace.for_generator(teacher, space)
    supernet = build_supernet(teacher, space)
    return MacsTable(supernet, (SIZE, SIZE))(supernet.parse_arch(spec))


def same_output(a, b) -> None:
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))


def cache_entries(out) -> dict:
    return json.loads((out / "search_cache.json").read_text())["entries"]


def test_fast_gan_compression_exports_resumes_and_reruns_a_new_budget_without_training(
    tmp_path, paired_root, teacher
):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "run"
    budget = macs_of(teacher, "4_4_4_4_4_4_4_4")  # between the smallest and the largest
    result = compress(
        "fast-gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, budget_macs=budget)
    )
    summary = result.summary
    # the export is a plain generator in the saved-model format, identical to the returned one
    student = load_generator(out / "student")
    assert student.arch == result.generator.arch and not student.options.get("spectral_norm")
    same_output(student, result.generator)
    # the exported subnet's profiled MACs are what the search used, within the budget
    search = json.loads((out / "search.json").read_text())
    assert profile_generator(student, (SIZE, SIZE)).macs_paper == int(search["cost"]) <= budget
    assert search["arch"] == str(student.arch) and search["evaluations"] > 0
    assert summary["stages"]["supernet"]["trained_steps"] == 4
    assert summary["stages"]["finetune"]["trained_steps"] == 2
    scored = cache_entries(out)

    # the same run again: every stage resumes from its last checkpoint, every score from the cache
    again = compress(
        "fast-gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, budget_macs=budget)
    )
    assert again.summary["details"]["search"]["evaluations"] == 0
    assert cache_entries(out) == scored
    for stage in ("supernet", "finetune"):
        assert again.summary["stages"][stage]["trained_steps"] == 0
        assert again.summary["stages"][stage]["resumed_from"]
    same_output(again.generator, result.generator)

    # a new budget: the supernet is not retrained and already scored candidates are not rescored
    smaller = macs_of(teacher, "4_4_2_4_4_4_4_4")
    third = compress(
        "fast-gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, budget_macs=smaller)
    )
    assert third.summary["stages"]["supernet"]["trained_steps"] == 0
    assert profile_generator(third.generator, (SIZE, SIZE)).macs_paper <= smaller
    entries = cache_entries(out)
    assert set(scored) <= set(entries)
    assert third.summary["details"]["search"]["evaluations"] == len(entries) - len(scored)


def test_the_recipe_seed_offsets_the_seed_option_like_the_other_methods(tmp_path, paired_root, teacher):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    budget = macs_of(teacher, "4_4_4_4_4_4_4_4")

    def student(name, seed, overrides=()):
        options = MethodOptions(recipe=recipe, budget_macs=budget, seed=seed, overrides=overrides)
        return compress("fast-gan-compression", teacher, paired_root, tmp_path / name, options).generator

    from_recipe = student("recipe", 0, ("seed=1",))
    from_option = student("option", 1)
    same_output(from_recipe, from_option)
    # and the seed does reach the run: seed 0 trains other weights
    unseeded = student("zero", 0)
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        differs = unseeded.arch != from_recipe.arch or not torch.allclose(
            unseeded.eval()(x), from_recipe.eval()(x)
        )
    assert differs


def test_infeasible_budget_fails_before_training_naming_the_smallest_reachable_macs(
    tmp_path, paired_root, teacher
):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    smallest = macs_of(teacher, "4_4_2_4_4_4_4_4")
    with pytest.raises(BudgetError, match=rf"smallest reachable {smallest:,}"):
        compress(
            "fast-gan-compression",
            teacher,
            paired_root,
            tmp_path / "run",
            MethodOptions(recipe=recipe, budget_macs=1e3),
        )
    assert not (tmp_path / "run" / "supernet").exists()


def test_gan_compression_cli_with_teacher_discriminator_and_exhaustive_search(
    tmp_path, paired_root, teacher, capsys
):
    teacher_dir = save_generator(teacher, tmp_path / "teacher")
    disc = create_discriminator("patchgan", in_channels=6, base_width=4, num_layers=2, norm="instance")
    from safetensors.torch import save_file

    save_file(disc.state_dict(), str(teacher_dir / "discriminator.safetensors"))
    config = {"name": "patchgan", "in_channels": 6, "base_width": 4, "num_layers": 2, "norm": "instance"}
    (teacher_dir / "discriminator.json").write_text(json.dumps(config))
    recipe = write_recipe(tmp_path / "recipe.yaml", strategy="exhaustive", mobile=True, space=SMALL_SPACE)
    out = tmp_path / "run"
    budget = macs_of(teacher, "4_8_4_8_8_4_8_8", SMALL_SPACE)
    argv = [
        "compress",
        "--method",
        "gan-compression",
        "--teacher",
        str(teacher_dir),
        "--data",
        str(paired_root),
    ]
    argv += ["--out", str(out), "--recipe", recipe, "--budget-macs", str(budget)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "gan-compression at 32x32" in printed and "exhaustive" in printed
    summary = json.loads((out / "summary.json").read_text())
    method = summary["method_summary"]
    assert method["notes"]["mobile_teacher"] == "separable ResNet distilled from the teacher"
    assert method["notes"]["mobile_teacher_discriminator"].startswith("initialised from the teacher's")
    assert method["stages"]["mobile_teacher"]["trained_steps"] == 2
    # exhaustive: every feasible arch of the 16 was scored, the best one exported
    feasible = method["details"]["search"]["candidates"]
    assert 0 < feasible < 16 and method["details"]["search"]["evaluations"] == feasible
    student = load_generator(out / "generator")
    same_output(student, load_generator(out / "student"))
    assert summary["student"]["macs_paper"] == int(method["details"]["search"]["cost"]) <= budget
    assert student.options["separable"] is True

    # re-running the command resumes: no training, no new evaluations
    assert main(argv) == 0
    again = json.loads((out / "summary.json").read_text())["method_summary"]
    assert again["details"]["search"]["evaluations"] == 0
    assert all(s["trained_steps"] == 0 for s in again["stages"].values())
    # an infeasible budget on the command line is an error naming the smallest reachable MACs
    assert main(argv[:-1] + ["10"]) == 2
    assert "smallest reachable" in capsys.readouterr().err


def test_unpaired_data_learns_from_teacher_pseudo_pairs(tmp_path, teacher):
    root = tmp_path / "unpaired"
    rng = np.random.default_rng(0)
    for i in range(8):
        save(root / "trainA" / f"{i}.png", _glyph(rng))
        save(root / "trainB" / f"{i}.png", 255 - _glyph(rng))
    recipe = write_recipe(tmp_path / "recipe.yaml")
    result = compress(
        "fast-gan-compression", teacher, root, tmp_path / "run", MethodOptions(recipe=recipe, ratio=0.9)
    )
    note = result.summary["notes"]["unpaired"]
    assert "pseudo-pairs" in note and "loss.recon_target=teacher" in note
    used = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert used["loss"]["recon_target"] == "teacher" and used["search"]["metric_target"] == "teacher"
    assert used["discriminator"]["conditional"] is False
    assert result.summary["data_kind"] == "unpaired"
    assert torch.isfinite(torch.tensor(result.summary["details"]["search"]["score"]))


def test_unlabelled_inputs_join_every_training_stage_and_bad_ones_fail_before_training(
    tmp_path, paired_root, teacher
):
    folder = tmp_path / "unlabelled"
    rng = np.random.default_rng(1)
    for i in range(5):
        save(folder / f"u{i}.png", _glyph(rng))
    recipe = write_recipe(tmp_path / "recipe.yaml", mobile=True)
    options = MethodOptions(recipe=recipe, ratio=0.9, overrides=(f"data.unlabelled={folder}",))
    out = tmp_path / "run"
    result = compress("gan-compression", teacher, paired_root, out, options)
    assert result.summary["notes"]["unlabelled"].startswith(f"5 unlabelled inputs from {folder}")
    logs = sorted(out.glob("**/logs/train.csv"))
    assert {p.relative_to(out).parts[0] for p in logs} == {"mobile_teacher", "supernet", "finetune"}
    for path in logs:
        header = path.read_text().splitlines()[0].split(",")
        assert {"loss_unlabelled_recon", "loss_unlabelled_distill"} <= set(header), path

    def fails(name, error, match, generator=teacher, folder_option=folder, recipe=recipe):
        opts = MethodOptions(recipe=recipe, ratio=0.9, overrides=(f"data.unlabelled={folder_option}",))
        with pytest.raises(error, match=match):
            compress("fast-gan-compression", generator, paired_root, tmp_path / name, opts)
        assert not (tmp_path / name / "supernet").exists()

    fails(
        "missing", DataError, "data.unlabelled: folder .*none does not exist", folder_option=tmp_path / "none"
    )
    (tmp_path / "empty").mkdir()
    fails(
        "empty",
        DataError,
        "data.unlabelled: folder .*empty contains no images",
        folder_option=tmp_path / "empty",
    )
    from tiny import TINY_GENERATORS

    munit = create_generator("munit", **TINY_GENERATORS["munit"])
    any_width = write_recipe(tmp_path / "munit.yaml", space={"*": [1.0, 0.5]})
    fails("munit", ConfigError, "data.unlabelled: only image-to-image", generator=munit, recipe=any_width)


def test_latency_budget_is_measured_and_cached(tmp_path, paired_root, teacher):
    recipe = write_recipe(tmp_path / "recipe.yaml", generations=1)
    out = tmp_path / "run"
    result = compress(
        "fast-gan-compression", teacher, paired_root, out, MethodOptions(recipe=recipe, budget_latency_ms=1e4)
    )
    search = result.summary["details"]["search"]
    assert search["budget_kind"] == "latency_ms" and 0 < search["cost"] <= 1e4
    cache = json.loads((out / "latency_cache.json").read_text())["entries"]
    assert any(k.startswith(f"{search['arch']}|{SIZE}x{SIZE}") for k in cache)
    with pytest.raises(BudgetError, match="smallest reachable"):
        compress(
            "fast-gan-compression",
            teacher,
            paired_root,
            out,
            MethodOptions(recipe=recipe, budget_latency_ms=1e-6),
        )


@pytest.mark.parametrize(
    "family, method",
    [("unet", "gan-compression"), ("munit", "fast-gan-compression"), ("spade", "fast-gan-compression")],
)
def test_every_family_compresses_to_a_saved_subnet_at_the_searched_macs(
    tmp_path, paired_root, family, method
):
    from tiny import TINY_GENERATORS

    torch.manual_seed(0)
    teacher = create_generator(family, **TINY_GENERATORS[family])
    path = write_recipe(tmp_path / "recipe.yaml", space={"*": [1.0, 0.5]})
    recipe = yaml.safe_load((tmp_path / "recipe.yaml").read_text())
    root = paired_root
    if family == "spade":
        # semantic data: label maps of 5 classes and photos; GauGAN's multi-scale D and feature matching
        root = tmp_path / "semantic"
        rng = np.random.default_rng(0)
        for i in range(8):
            save(
                root / "train_label" / f"{i}.png", rng.integers(0, 5, size=(SIZE, SIZE)).astype(np.uint8), "L"
            )
            save(root / "train_img" / f"{i}.png", _glyph(rng))
        recipe["data"]["num_classes"] = 5
        recipe["discriminator"]["name"] = "multiscale"
        recipe["loss"]["feature_matching"] = 10.0
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    result = compress(method, teacher, root, out, MethodOptions(recipe=path, ratio=0.9))
    student = load_generator(out / "student")
    assert student.family == family and student.arch == result.generator.arch != teacher.arch
    x = teacher.example_input((SIZE, SIZE), batch=2)
    kwargs = {"style_image": torch.zeros(2, 3, SIZE, SIZE)} if family == "munit" else {}
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(x, **kwargs), result.generator.eval()(x, **kwargs))
    assert profile_generator(student, (SIZE, SIZE)).macs_paper == int(
        result.summary["details"]["search"]["cost"]
    )


def test_miou_search_without_a_segmenter_fails_before_training(tmp_path, paired_root, teacher):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    options = MethodOptions(recipe=recipe, ratio=0.9, overrides=("search.metric=miou",))
    with pytest.raises(ConfigError, match="no shipped segmenter"):
        compress("fast-gan-compression", teacher, paired_root, tmp_path / "run", options)
    assert not (tmp_path / "run" / "supernet").exists()


def test_every_shipped_method_recipe_loads():
    """The methods' twin of test_every_shipped_recipe_loads (configs/train): each YAML under
    configs/methods/ parses and validates with its method's recipe loader."""
    from pathlib import Path

    from gancompress.methods.cat.recipe import load_recipe as cat_recipe
    from gancompress.methods.coronet.recipe import load_recipe as coronet_recipe
    from gancompress.methods.gan_compression.recipe import load_recipe as gc_recipe
    from gancompress.methods.gan_slimming.recipe import load_recipe as gs_recipe
    from gancompress.methods.omgd.recipe import load_recipe as omgd_recipe

    loaders = {
        "gan_compression": gc_recipe,
        "fast_gan_compression": gc_recipe,
        "gan_slimming": gs_recipe,
        "coronet": coronet_recipe,
        "omgd": omgd_recipe,
        "cat": cat_recipe,
    }
    root = Path(__file__).parents[2] / "configs" / "methods"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(loaders)
    for folder, load in loaders.items():
        recipes = sorted((root / folder).glob("*.yaml"))
        assert len(recipes) >= 5, folder
        for path in recipes:
            recipe = load(path)
            assert recipe.version == 1, path
