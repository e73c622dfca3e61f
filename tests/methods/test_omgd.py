"""OMGD at tiny sizes: the loss terms, the deeper teachers, the widths for a target, the online step,
and the registered runner end to end (CLI, target, gate, resume, the saved student is the trained one)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from gancompress.cli import main
from gancompress.config import recipes_dir
from gancompress.data import build_font_dataset
from gancompress.errors import BudgetError, ConfigError
from gancompress.export.saved import load_generator, save_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.common.macs import MacsTable, profile_arch
from gancompress.methods.common.recipe import StageConfig
from gancompress.methods.omgd import (
    ChannelDistillation,
    OmgdLoss,
    OmgdTask,
    deep_teacher,
    load_recipe,
    output_terms,
    ssim,
    total_variation,
    widths_for_target,
)
from gancompress.methods.omgd.losses import gram
from gancompress.models import create_discriminator, create_generator
from gancompress.training.checkpoint import latest_checkpoint, load_checkpoint

TINY = {
    "resnet": dict(base_width=4, num_blocks=3),
    "resnet_separable": dict(base_width=4, num_blocks=3, separable=True),
    "unet": dict(base_width=4, num_downs=5),
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(key: str):
    torch.manual_seed(0)
    return create_generator(key.split("_")[0], **TINY[key])


# -- the loss terms --------------------------------------------------------------------------------
def test_ssim_tv_and_gram_follow_the_official_definitions():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    noise = torch.randn_like(a)
    assert (
        1
        > float(ssim(a, a + 0.1 * noise))
        > float(ssim(a, a + 0.5 * noise))
        > float(ssim(a, torch.zeros_like(a)))
    )
    x = torch.tensor([[[[0.0, 1.0], [3.0, 2.0]]]])
    assert float(total_variation(x)) == (1 + 1) + (3 + 1)  # |1-0| + |2-3| across, |3-0| + |2-1| down
    f = torch.randn(2, 4, 3, 5)
    expected = torch.einsum("bchw,bdhw->bcd", f, f) / (4 * 3 * 5)
    torch.testing.assert_close(gram(f), expected)


def test_output_terms_are_zero_against_oneself_but_tv_and_weighted():
    torch.manual_seed(0)
    s = torch.rand(1, 3, 16, 16) * 2 - 1
    weights = {"ssim": 10.0, "style": 0.0, "feature": 0.0, "tv": 1e-5}
    terms = output_terms(s, s.clone(), weights, vgg=None)
    assert float(terms["ssim"]) == pytest.approx(0.0, abs=1e-4)
    assert float(terms["tv"]) == pytest.approx(1e-5 * float(total_variation(s)))
    other = output_terms(s, torch.zeros_like(s), weights, vgg=None)
    assert float(other["ssim"]) > 1.0
    with pytest.raises(ConfigError, match="VGG16"):
        output_terms(s, s, {**weights, "style": 1.0}, vgg=None)


def test_channel_distillation_is_mse_of_spatial_means_after_the_connector():
    torch.manual_seed(0)
    cd = ChannelDistillation({"p": 2}, {"p": 5})
    conv, bn = cd.connectors["p"][0], cd.connectors["p"][1]
    assert conv.bias is None and conv.weight.std() < 0.1  # N(0, 0.02) as the official init_net leaves it
    s, t = torch.randn(3, 2, 4, 4), torch.randn(3, 5, 4, 4)
    mapped = F.relu(bn(conv(s)))
    expected = (mapped.mean(dim=(2, 3)) - t.mean(dim=(2, 3))).pow(2).mean()
    cd2 = ChannelDistillation({"p": 2}, {"p": 5})
    cd2.load_state_dict(cd.state_dict())
    torch.testing.assert_close(cd2({"p": s}, {"p": t}), expected)
    with pytest.raises(ConfigError, match="no feature point"):
        ChannelDistillation({"q": 2}, {"p": 5})


# -- the deeper teachers and the widths -----------------------------------------------------------
@pytest.mark.parametrize("key", sorted(TINY))
def test_deeper_teacher_maps_like_the_student_and_is_deeper(key):
    student = tiny(key)
    deep = deep_teacher(student)
    x = student.example_input((32, 32), batch=2)
    y = deep(x)
    assert y.shape == student(x).shape and y.abs().max() <= 1
    y.square().mean().backward()
    assert all(p.grad is not None for p in deep.parameters())
    convs = [m for m in deep.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    s_convs = [m for m in student.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert len(convs) > len(s_convs) + 8


def test_widths_for_target_is_the_widest_uniform_scaling_within_the_target():
    teacher = tiny("resnet")
    size = (32, 32)

    def macs(arch):
        return profile_arch(type(teacher), teacher.options, arch, size).macs_paper

    full = macs(teacher.arch)
    arch, scale = widths_for_target(teacher.arch, macs, 0.4 * full)
    assert macs(arch) <= 0.4 * full
    assert len(set(arch.widths)) == 1 and scale == arch.widths[0] / 4
    wider = type(arch)(arch.family, tuple(w + 1 for w in arch.widths))
    assert macs(wider) > 0.4 * full
    with pytest.raises(BudgetError, match="narrowest"):
        widths_for_target(teacher.arch, macs, 10.0)


OFFICIAL = {  # recipe: (teacher family, the official student: every width ngf 16)
    "horse2zebra": "resnet",
    "edges2shoes": "resnet",
    "cityscapes": "resnet",
    "unet_edges2shoes": "unet",
    "unet_cityscapes": "unet",
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_recipes_give_the_official_ngf16_students(name):
    recipe = load_recipe(recipes_dir() / "methods" / "omgd" / f"{name}.yaml")
    with torch.device("meta"):
        teacher = create_generator(OFFICIAL[name])  # the published ngf-64 teacher
        options = dict(teacher.options)
        if recipe.student.separable is not None:
            options["separable"] = recipe.student.separable
        base = type(teacher).from_options(teacher.arch, options)
    arch, scale = widths_for_target(
        teacher.arch, MacsTable(base, recipe.image_size), recipe.target.budget_macs
    )
    assert set(arch.widths) == {16} and scale == 0.25
    assert recipe.teachers.deep is (name != "horse2zebra")  # the official CycleGAN distiller has one teacher


# -- the online step -------------------------------------------------------------------------------
def test_teachers_learn_by_gan_the_student_by_distillation_only():
    torch.manual_seed(0)
    wide = create_generator("resnet", base_width=8, num_blocks=3)
    student = create_generator("resnet", arch="2_2_2_2_2_2_2_2", base_width=4, num_blocks=3)
    deep = deep_teacher(student)
    disc = create_discriminator("patchgan", in_channels=6, base_width=4, num_layers=2)
    loss = OmgdLoss(style=0.0, feature=0.0, cd=10.0)
    cd = ChannelDistillation(
        {p: student.feature_channels()[p] for p in ("block3",)},
        {p: wide.feature_channels()[p] for p in ("block3",)},
    )
    task = OmgdTask(
        student, {"wide": wide, "deep": deep}, {"shared": disc}, {"wide": "shared", "deep": "shared"}, loss,
        StageConfig(lr_g=1e-3), objective="pix2pix", every=2, cd=cd,
    )  # fmt: skip
    opts = task.configure_optimizers()
    student_ids = {id(p) for p in student.parameters()} | {id(p) for p in cd.parameters()}
    assert not student_ids & {id(p) for g in opts["D"].param_groups for p in g["params"]}
    assert not student_ids & {id(p) for g in opts["T"].param_groups for p in g["params"]}
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}

    def snap(m):
        return [p.detach().clone() for p in m.parameters()]

    before = {"s": snap(student), "w": snap(wide), "d": snap(deep), "D": snap(disc)}
    logs = task.training_step(batch, 1, opts)  # odd step with every=2: the student alone
    assert not any(k.startswith(("loss_t_", "loss_d")) for k in logs)
    assert {"loss_s_ssim_wide", "loss_s_ssim_deep", "loss_s_tv_wide", "loss_s_cd"} <= set(logs)
    for name, net in (("w", wide), ("d", deep), ("D", disc)):
        assert all(torch.equal(a, b) for a, b in zip(before[name], snap(net))), name
    assert not all(torch.equal(a, b) for a, b in zip(before["s"], snap(student)))
    logs = task.training_step(batch, 2, opts)
    assert {"loss_d", "loss_t_gan_wide", "loss_t_recon_deep"} <= set(logs)
    for name, net in (("w", wide), ("d", deep), ("D", disc)):
        assert not all(torch.equal(a, b) for a, b in zip(before[name], snap(net))), name
    # no discriminator reaches the student: with another discriminator (and so other teacher updates)
    # the student's step is the same, as it distils from the teachers' outputs before their update
    other = copy.deepcopy(task)
    with torch.no_grad():
        for p in other.discriminators.parameters():
            p.mul_(3.0)
    other_opts = other.configure_optimizers()
    for k in opts:
        other_opts[k].load_state_dict(copy.deepcopy(opts[k].state_dict()))  # no shared moments
    task.training_step(batch, 4, opts)
    other.training_step(batch, 4, other_opts)
    assert not all(
        torch.equal(a, b) for a, b in zip(snap(task.teachers["wide"]), snap(other.teachers["wide"]))
    )
    for a, b in zip(snap(task.student), snap(other.student)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_cyclegan_step_trains_both_teacher_pairs_and_the_student_from_their_a_to_b_outputs():
    torch.manual_seed(0)
    student = create_generator("resnet", arch="2_2_2_2_2_2_2_2", base_width=4, num_blocks=3)
    reverse_student = create_generator("resnet", arch="2_2_2_2_2_2_2_2", base_width=4, num_blocks=3)
    teachers = {"wide": tiny("resnet"), "deep": deep_teacher(student)}
    reverses = {"wide": tiny("resnet"), "deep": deep_teacher(reverse_student)}

    def disc():
        return create_discriminator("patchgan", in_channels=3, base_width=4, num_layers=2)

    task = OmgdTask(
        student, teachers, {"wide": disc(), "deep": disc()}, {"wide": "wide", "deep": "deep"},
        OmgdLoss(gan_mode="lsgan", style=0.0, feature=0.0, pool_size=2), StageConfig(), objective="cyclegan",
        reverses=reverses, discriminators_a={"wide": disc(), "deep": disc()},
    )  # fmt: skip
    opts = task.configure_optimizers()
    before = [p.detach().clone() for p in task.reverses.parameters()]
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    logs = task.training_step(batch, 0, opts)
    for name in ("wide", "deep"):
        assert {
            f"loss_t_gan_{name}",
            f"loss_t_cycle_{name}",
            f"loss_t_identity_{name}",
            f"loss_s_ssim_{name}",
        } <= set(logs)
    assert not all(torch.equal(a, b) for a, b in zip(before, task.reverses.parameters()))
    assert task.pools["b_deep"].images.shape[0] == 2  # the discriminators saw the pooled fakes
    with pytest.raises(ConfigError, match="reverse"):
        OmgdTask(
            student, teachers, {"d": disc()}, {"wide": "d", "deep": "d"}, OmgdLoss(), StageConfig(),
            objective="cyclegan",
        )  # fmt: skip


# -- the registered runner ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    root = tmp_path_factory.mktemp("omgd_data")
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
    "train.max_steps=4",
    "train.checkpoint_every=2",
)
NO_VGG = ("loss.style=0", "loss.feature=0")


def trained_student_state(out):
    """The student's weights in the distillation stage's last checkpoint."""
    ckpt = load_checkpoint(latest_checkpoint(out / "distill" / "checkpoints"))
    return {k.removeprefix("student."): v for k, v in ckpt.model.items() if k.startswith("student.")}


@pytest.mark.slow
def test_cli_end_to_end_reaches_the_target_passes_the_gate_and_saves_the_trained_student(tmp_path, fonts):
    teacher = tiny("resnet")
    save_generator(teacher, tmp_path / "teacher")
    out = tmp_path / "run"
    code = main([
        "compress", "--method", "omgd", "--teacher", str(tmp_path / "teacher"), "--data", str(fonts["paired"]),
        "--out", str(out), "--ratio", "0.3", "--quick", *[a for kv in QUICK for a in ("--set", kv)],
    ])  # fmt: skip
    assert code in (0, None)
    summary = json.loads((out / "method_summary.json").read_text())
    assert summary["method"] == "omgd" and summary["gate"]["passed"] is True
    assert summary["student"]["macs_paper"] <= summary["target"]["macs"]
    assert summary["target"]["macs"] == pytest.approx(0.3 * summary["teacher"]["macs_paper"])
    details = summary["details"]
    assert details["objective"] == "pix2pix" and details["teachers"]["deep"] is not None
    assert details["teachers"]["wide"]["arch"] == str(teacher.arch)  # the given teacher's widths
    assert details["loss"]["vgg"] is not None and details["loss"]["points"] == [
        "trunk_in",
        "block3",
        "block6",
        "block9",
    ]
    assert summary["plan"]["stages"]["distill"]["steps"] == 4 and summary["stages"]["distill"]["steps"] == 4
    # supernet-free: the saved student is the trained network itself
    student = load_generator(out / "student")
    assert str(student.arch) == details["student"]["arch"] == summary["student"]["arch"]
    saved = student.state_dict()
    trained = trained_student_state(out)
    assert sorted(saved) == sorted(trained)
    for k, v in trained.items():
        torch.testing.assert_close(saved[k], v, rtol=0, atol=0)
    assert details["held_out"]["images"] == 4 and set(details["held_out"]) >= {"student", "teacher_wide"}


@pytest.mark.slow
def test_resume_continues_the_stage_and_equals_a_straight_run(tmp_path, fonts):
    teacher = tiny("resnet")
    opts = dict(quick=True, ratio=0.3)
    straight = compress(
        "omgd", teacher, fonts["paired"], tmp_path / "a", MethodOptions(**opts, overrides=QUICK + NO_VGG)
    )
    compress(
        "omgd", teacher, fonts["paired"], tmp_path / "b",
        MethodOptions(**opts, overrides=QUICK + NO_VGG + ("train.max_steps=2",)),
    )  # fmt: skip
    resumed = compress(
        "omgd", teacher, fonts["paired"], tmp_path / "b", MethodOptions(**opts, overrides=QUICK + NO_VGG)
    )
    stage = resumed.summary["stages"]["distill"]
    assert stage["resumed_from"] is not None and stage["trained_steps"] == 2
    x = teacher.example_input((32, 32), batch=2)
    torch.testing.assert_close(resumed.generator.eval()(x), straight.generator.eval()(x))
    smaller = dict(quick=True, ratio=0.15, overrides=QUICK + NO_VGG)
    with pytest.raises(ConfigError, match="another recipe"):
        compress("omgd", teacher, fonts["paired"], tmp_path / "b", MethodOptions(**smaller))
    # past the recipe's fingerprint, the stage's own record refuses a student of other widths
    with pytest.raises(ConfigError, match="distilled towards"):
        compress(
            "omgd", teacher, fonts["paired"], tmp_path / "b", MethodOptions(**smaller, resume_anyway=True)
        )


@pytest.mark.slow
@pytest.mark.parametrize("key,data", [("unet", "paired"), ("resnet_separable", "unpaired")])
def test_unet_and_unpaired_students_reach_their_target(tmp_path, fonts, key, data):
    teacher = tiny(key)
    overrides = QUICK + NO_VGG + ("gate.enabled=false",)
    result = compress(
        "omgd",
        teacher,
        fonts[data],
        tmp_path / "run",
        MethodOptions(quick=True, ratio=0.4, overrides=overrides),
    )
    summary = result.summary
    assert summary["student"]["macs_paper"] <= summary["target"]["macs"]
    assert result.generator.family == teacher.family
    assert result.generator.options == teacher.options  # the teacher's family and options, other widths
    details = summary["details"]
    if data == "unpaired":
        assert details["objective"] == "cyclegan" and details["teachers"]["deep"] is None
        assert "LSGAN" in summary["notes"]["gan_mode"]
    else:
        assert details["teachers"]["deep"] is not None and details["held_out"]["images"] == 4
    student = load_generator(tmp_path / "run" / "student")
    x = teacher.example_input((32, 32))
    torch.testing.assert_close(student(x), result.generator.eval()(x))


def test_bad_targets_and_families_are_refused(tmp_path, fonts):
    with pytest.raises(ConfigError, match="MACs target"):
        compress(
            "omgd",
            tiny("resnet"),
            fonts["paired"],
            tmp_path / "r2",
            MethodOptions(quick=True, budget_latency_ms=5.0),
        )
    with pytest.raises(ConfigError, match="families"):
        compress(
            "omgd", create_generator("munit", base_width=4, mlp_dim=16), fonts["paired"], tmp_path / "r3",
            MethodOptions(quick=True),
        )  # fmt: skip
    with pytest.raises(BudgetError, match="narrowest"):
        compress(
            "omgd",
            tiny("resnet"),
            fonts["paired"],
            tmp_path / "r4",
            MethodOptions(quick=True, budget_macs=1000.0, overrides=QUICK),
        )
    with pytest.raises(ConfigError, match="no target"):
        compress(
            "omgd", tiny("resnet"), fonts["paired"], tmp_path / "r5",
            MethodOptions(quick=True, overrides=QUICK + ("target.ratio=null",)),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="pix2pix needs paired"):
        compress(
            "omgd", tiny("resnet"), fonts["unpaired"], tmp_path / "r6",
            MethodOptions(quick=True, ratio=0.3, overrides=QUICK + ("loss.objective=pix2pix",)),
        )  # fmt: skip


@pytest.mark.slow
def test_a_time_budget_shortens_the_distillation_stage(tmp_path, fonts):
    long = QUICK + NO_VGG + ("gate.enabled=false", "train.epochs=1000", "train.max_steps=4000")
    result = compress(
        "omgd", tiny("resnet"), fonts["paired"], tmp_path / "run",
        MethodOptions(quick=True, ratio=0.3, overrides=long, time_budget_s=12.0),
    )  # fmt: skip
    plan = result.summary["plan"]
    assert plan["budget_s"] == 12.0 and plan["scale"] < 1
    stage = plan["stages"]["distill"]
    assert stage["recipe_steps"] == 4000 and 10 <= stage["steps"] < 4000 and stage["step_s"] > 0
    assert result.summary["stages"]["distill"]["steps"] == stage["steps"]
