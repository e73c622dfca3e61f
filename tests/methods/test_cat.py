"""CAT at tiny sizes: the inception family, kernel alignment, one-step pruning, the registered runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gancompress.arch import ArchSpec
from gancompress.data import build_font_dataset
from gancompress.errors import BudgetError, ConfigError
from gancompress.export.saved import load_generator, save_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.cat import (
    CatLoss,
    CatTask,
    kernel_alignment,
    load_recipe,
    remove_channels,
    search_threshold,
    widths_at,
)
from gancompress.methods.cat.prune import keep_indices, scale_norms
from gancompress.methods.common.macs import MacsTable
from gancompress.methods.common.recipe import StageConfig
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator

RECIPES = Path(__file__).parents[2] / "configs" / "methods" / "cat"
TINY = dict(base_width=4, num_blocks=3, kernel_sizes=(1, 3))


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**kw):
    torch.manual_seed(0)
    g = create_generator("inception", **(TINY | kw)).eval()
    with torch.no_grad():
        for p in g.parameters():  # non-trivial weights and scales, so a wrong slice would show
            p.normal_(0, 0.3)
    return g


# -- the family -------------------------------------------------------------------------------------
def test_official_teacher_shape_and_arch_string():
    with torch.device("meta"):
        g = create_generator("inception")
    # inception_9blocks at ngf 64, reduction 6: 42 channels in each of the 6 branches of 9 blocks
    assert len(g.arch.widths) == 5 + 9 * 6
    assert str(g.arch).startswith("64_128_256_42_42_42_42_42_42_") and str(g.arch).endswith("_42_128_64")
    assert g.width_groups[3].name == "block1_res1" and g.width_groups[8].name == "block1_dw5"
    with pytest.raises(ConfigError, match="kernel_sizes"):
        create_generator("inception", kernel_sizes=(3, 3))


def test_macs_follow_the_branch_widths():
    g = tiny()
    size = (32, 32)
    base = profile_generator(g, size).macs_paper
    arch = list(g.arch.widths)
    arch[3] -= 1  # one channel fewer in block 1's 1×1 plain branch: two 1×1 convs and one affine norm
    fewer = profile_generator(g.extract_subnet(ArchSpec("inception", tuple(arch))), size).macs_paper
    trunk, pixels = g.channels()["trunk"], (size[0] // 4) * (size[1] // 4)
    assert base - fewer == 2 * trunk * pixels + pixels


def test_saved_and_exported_like_the_other_families(tmp_path):
    from gancompress.export.onnx import export_onnx, ort_session, run_session
    from gancompress.export.torchscript import export_torchscript, load_torchscript

    g = tiny()
    path = save_generator(g, tmp_path / "g")
    back = load_generator(path).eval()
    x = g.example_input((32, 32))
    torch.testing.assert_close(back(x), g(x))
    assert back.get_config() == g.get_config()
    traced = load_torchscript(export_torchscript(path, tmp_path / "g.pt", size=(32, 32)))
    torch.testing.assert_close(traced(x), g(x), rtol=1e-5, atol=1e-5)
    x48 = g.example_input((48, 48))  # the traced program takes other sizes too
    torch.testing.assert_close(traced(x48), g(x48), rtol=1e-5, atol=1e-5)
    onnx = export_onnx(g, tmp_path / "g.onnx", size=(32, 32))
    out = run_session(ort_session(onnx), x)
    torch.testing.assert_close(torch.as_tensor(out), g(x), rtol=1e-4, atol=1e-4)


def test_profile_command_reads_the_family(tmp_path, capsys):
    from gancompress.cli import main

    path = save_generator(tiny(), tmp_path / "g")
    assert main(["profile", str(path), "--size", "32"]) in (0, None)
    assert "inception" in capsys.readouterr().out
    assert main(["profile", "inception", "--base-width", "4", "--size", "32"]) in (0, None)
    assert "inception" in capsys.readouterr().out


# -- kernel alignment -------------------------------------------------------------------------------
def test_ka_is_one_for_identical_features_and_invariant_to_rotation_and_scale():
    torch.manual_seed(0)
    x = torch.randn(6, 5, 4, 4)
    torch.testing.assert_close(kernel_alignment(x, x), torch.tensor(1.0))
    flat = x.reshape(6, -1)
    q, _ = torch.linalg.qr(torch.randn(flat.shape[1], flat.shape[1], dtype=torch.float64))
    rotated = (flat.double() @ q).float().reshape(6, 80, 1, 1)  # another channel layout altogether
    y = torch.randn(6, 3, 4, 4)
    torch.testing.assert_close(kernel_alignment(rotated, y), kernel_alignment(x, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kernel_alignment(7.5 * x, 0.01 * y), kernel_alignment(x, y))
    assert kernel_alignment(x, y) < 0.99  # unrelated features are not aligned
    with pytest.raises(ValueError, match="same batch"):
        kernel_alignment(x, y[:3])


def test_ka_matches_the_official_formula():
    torch.manual_seed(1)
    x, y = torch.randn(4, 8, 3, 3), torch.randn(4, 2, 3, 3)
    xf, yf = x.view(4, -1), y.view(4, -1)
    kx, ky = xf @ xf.T, yf @ yf.T
    official = (kx * ky).sum() / ((kx**2).sum() * (ky**2).sum()) ** 0.5  # snap-research/CAT utils/common.py
    torch.testing.assert_close(kernel_alignment(x, y), official)


# -- one-step pruning -------------------------------------------------------------------------------
def zero_pruned_scales_(g, arch):
    """γ = β = 0 in every norm that writes a channel the pruning removes (the trunk's: all blocks' too)."""
    keep = keep_indices(g, arch)
    with torch.no_grad():
        for group, norm in scale_norms(g).items():
            off = torch.ones(norm.weight.numel(), dtype=torch.bool)
            off[keep[group]] = False
            writers = [norm] + ([b.out_norm for b in g.blocks] if group == "trunk" else [])
            for n in writers:
                n.weight[off] = 0
                n.bias[off] = 0


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_pruning_keeps_the_output_when_the_pruned_scales_are_zero(norm):
    g = tiny(norm=norm)
    if norm == "batch":
        with torch.no_grad():
            for m in g.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
    table = MacsTable(g, (32, 32))
    found = search_threshold(g, table, 0.4 * table(g.arch), min_channels=2)
    arch = ArchSpec.parse("inception", found["arch"])
    assert found["macs"] == table(arch) <= 0.4 * table(g.arch)
    zero_pruned_scales_(g, arch)
    x = g.example_input((32, 32), batch=2)
    small = remove_channels(g, arch).eval()
    assert small.arch == arch and small.family == "inception"
    # the depthwise branches' removed channels still add a constant (bias, second norm): folded, so exact
    torch.testing.assert_close(small(x), g(x), rtol=0, atol=1e-5)


def test_threshold_is_the_smallest_that_meets_the_target():
    g = tiny()
    table = MacsTable(g, (32, 32))
    target = 0.5 * table(g.arch)
    found = search_threshold(g, table, target, min_channels=2, tolerance=1e-6)
    t = found["threshold"]
    assert table(widths_at(g, t, 2)) <= target < table(widths_at(g, t * (1 - 1e-3), 2))
    floor = widths_at(g, float("inf"), 2)
    assert floor.widths[:3] == (2, 2, 2) and set(floor.widths[3:-2]) == {1}
    with pytest.raises(BudgetError, match="smallest network"):
        search_threshold(g, table, 0.5 * table(floor), min_channels=2)


def test_task_step_trains_the_student_by_ka_without_adapters():
    teacher, student = tiny(), tiny(base_width=2)
    from gancompress.models import create_discriminator

    disc = create_discriminator("patchgan", in_channels=6, base_width=4, num_layers=2)
    task = CatTask(student, teacher, disc, CatLoss(), StageConfig(), points=("trunk_in", "block9"))
    assert not any(k.startswith("adapter") for k in task.state_dict())
    assert not any(k.startswith("_frozen") for k in task.state_dict())
    batch = {"A": teacher.example_input((32, 32), batch=3), "B": torch.rand(3, 3, 32, 32) * 2 - 1}
    before = {k: v.clone() for k, v in student.state_dict().items()}
    logs = task.training_step(batch, 0, task.configure_optimizers())
    assert 0 < logs["ka_mean"] <= 1 and {"loss_d", "loss_gan_g", "loss_recon"} <= set(logs)
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())


# -- recipes ----------------------------------------------------------------------------------------
OFFICIAL_TARGETS = {"horse2zebra": 2.6e9, "zebra2horse": 2.6e9, "map2sat": 4.6e9, "cityscapes": 5.6e9}


@pytest.mark.parametrize("task", sorted(OFFICIAL_TARGETS))
def test_paper_recipes_reach_their_official_targets(task):
    recipe = load_recipe(RECIPES / f"{task}.yaml")
    assert recipe.prune.budget_macs == OFFICIAL_TARGETS[task] and recipe.prune.min_channels == 16
    cfg = recipe.teacher
    with torch.device("meta"):
        g = create_generator(
            "inception", base_width=cfg.base_width, num_blocks=cfg.num_blocks,
            kernel_sizes=cfg.kernel_sizes, reduction=cfg.reduction, norm=cfg.norm,
        )  # fmt: skip
    table = MacsTable(g, recipe.image_size)
    floor = ArchSpec(
        "inception",
        tuple(16 if grp.name in ("stem", "down1", "trunk", "up1", "up2") else 1 for grp in g.width_groups),
    )
    assert table(floor) < recipe.prune.budget_macs < table(g.arch)


def test_batch_of_one_is_refused_for_ka():
    with pytest.raises(ConfigError, match="batch_size"):
        load_recipe(RECIPES / "fonts_quick.yaml", ["data.batch_size=1"])


# -- the registered runner --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    root = tmp_path_factory.mktemp("cat_data")
    return {
        "paired": build_font_dataset(root / "paired", size=32, max_chars=24, seed=0),
        "unpaired": build_font_dataset(root / "unpaired", size=32, max_chars=24, seed=0, paired=False),
    }


QUICK = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "discriminator.base_width=4",
    "teacher.base_width=4",
    "teacher.num_blocks=3",
    "teacher.kernel_sizes=[1,3]",
    "teacher.train.max_steps=3",
    "teacher.train.checkpoint_every=2",
    "finetune.max_steps=3",
    "finetune.checkpoint_every=2",
    "prune.min_channels=2",
    "gate.enabled=false",
    "planner.probe_steps=2",
)


def resnet_teacher():
    torch.manual_seed(0)
    return create_generator("resnet", base_width=4, num_blocks=3)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["paired", "unpaired"])
def test_compress_end_to_end_reaches_the_target_and_saves_the_trained_student(tmp_path, fonts, data):
    teacher = resnet_teacher()
    out = tmp_path / "run"
    result = compress("cat", teacher, fonts[data], out, MethodOptions(quick=True, ratio=0.5, overrides=QUICK))
    summary = json.loads((out / "method_summary.json").read_text())
    assert (
        summary["student"]["macs_paper"]
        <= summary["target"]["macs"]
        == pytest.approx(0.5 * summary["teacher"]["macs_paper"])
    )
    details = summary["details"]
    assert details["inception_teacher"]["source"] == "train"
    assert details["inception_teacher"]["distilled_at"] == ["trunk_in", "block3", "block6", "block9"]
    assert details["pruning"]["arch"] == summary["student"]["arch"] == str(result.generator.arch)
    assert summary["stages"]["teacher"]["steps"] == 3 and summary["stages"]["finetune"]["steps"] == 3
    student = load_generator(out / "student")
    assert student.family == "inception" and student.arch == result.generator.arch
    x = teacher.example_input((32, 32), batch=2)
    torch.testing.assert_close(student(x), result.generator.eval()(x))
    assert load_generator(out / "inception_teacher").arch == create_generator("inception", **TINY).arch
    if data == "unpaired":
        assert "teacher's output" in summary["notes"]["objective"]
    else:  # a finished run resumes to the same student, and is not resumed towards another target
        again = compress(
            "cat", teacher, fonts[data], out, MethodOptions(quick=True, ratio=0.5, overrides=QUICK)
        )
        torch.testing.assert_close(again.generator.eval()(x), student(x))
        assert again.summary["stages"]["finetune"]["trained_steps"] == 0
        with pytest.raises(ConfigError, match="another recipe|target_macs"):
            compress("cat", teacher, fonts[data], out, MethodOptions(quick=True, ratio=0.3, overrides=QUICK))


def test_compress_refuses_what_it_cannot_do(tmp_path, fonts):
    with pytest.raises(ConfigError, match="target"):
        compress(
            "cat",
            resnet_teacher(),
            fonts["paired"],
            tmp_path,
            MethodOptions(quick=True, overrides=QUICK + ("prune.ratio=null",)),
        )
    with pytest.raises(BudgetError, match="smallest network"):
        compress(
            "cat",
            resnet_teacher(),
            fonts["paired"],
            tmp_path / "b",
            MethodOptions(quick=True, ratio=0.001, overrides=QUICK),
        )
    with pytest.raises(ConfigError, match="not an inception"):
        compress(
            "cat",
            resnet_teacher(),
            fonts["paired"],
            tmp_path / "c",
            MethodOptions(quick=True, ratio=0.5, overrides=QUICK + ("teacher.source=given",)),
        )
    with pytest.raises(ConfigError, match="MUNIT"):
        compress(
            "cat",
            create_generator("munit", base_width=4, mlp_dim=16),
            fonts["paired"],
            tmp_path / "d",
            MethodOptions(quick=True, ratio=0.5),
        )


@pytest.mark.slow
def test_cli_compress_reaches_the_budget_and_saves_the_trained_student(tmp_path, fonts, capsys):
    from gancompress.cli import main

    teacher_dir = save_generator(resnet_teacher(), tmp_path / "teacher")
    out = tmp_path / "run"
    budget = 0.4 * profile_generator(resnet_teacher(), (32, 32)).macs_paper
    sets = [a for s in QUICK for a in ("--set", s)]
    argv = ["compress", "--method", "cat", "--teacher", str(teacher_dir), "--data", str(fonts["paired"])]
    argv += ["--out", str(out), "--budget-macs", str(budget), "--quick", "--json", *sets]
    assert main(argv) in (0, None)
    summary = json.loads((out / "method_summary.json").read_text())
    assert summary["method"] == "cat" and summary["student"]["macs_paper"] <= budget
    assert summary["details"]["reached_macs"] == summary["student"]["macs_paper"]
    student = load_generator(out / "student")
    assert str(student.arch) == summary["student"]["arch"] == summary["details"]["pruning"]["arch"]
    assert profile_generator(student, (32, 32)).macs_paper <= budget
