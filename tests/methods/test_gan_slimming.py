"""GAN Slimming at tiny sizes: the proximal step, the quantisers, exact channel removal, control, the runner."""

from __future__ import annotations

import json

import pytest
import torch

from gancompress.data import build_font_dataset
from gancompress.errors import BudgetError, ConfigError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.common.macs import MacsTable
from gancompress.methods.common.recipe import StageConfig
from gancompress.methods.gan_slimming import (
    GanSlimmingTask,
    OutputDistillation,
    QuantizedGenerator,
    alive_channels,
    gram_matrix,
    quantize_ste,
    remove_off_channels,
    scale_groups,
    slimmable_student,
    soft_threshold_,
    threshold_to_budget,
    widths_at,
)
from gancompress.methods.gan_slimming.recipe import SlimLoss
from gancompress.models import create_generator

TINY = {
    "resnet": dict(base_width=4, num_blocks=6),
    "unet": dict(base_width=4, num_downs=5),
}


def tiny(key: str):
    torch.manual_seed(0)
    return create_generator(key, **TINY[key])


def kill_random_channels(student, groups, fraction=0.6, seed=1):
    """Random γ with a random ``fraction`` exactly 0, and random β everywhere (β of dead ones included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for group in groups.values():
            for name in group.norms:
                norm = student.get_submodule(name)
                norm.weight.copy_(torch.randn(norm.weight.shape, generator=g))
                norm.weight[torch.rand(norm.weight.shape, generator=g) < fraction] = 0
                norm.bias.copy_(torch.randn(norm.bias.shape, generator=g))


# -- the proximal step and the quantisers ------------------------------------------------------------
def test_proximal_step_is_the_soft_threshold():
    gamma = torch.tensor([1.0, -0.5, 0.05, -0.02, 0.0, 0.3])
    soft_threshold_([gamma], 0.1)
    torch.testing.assert_close(gamma, torch.tensor([0.9, -0.4, 0.0, 0.0, 0.0, 0.2]))


def test_weight_quantiser_is_symmetric_per_layer_and_passes_gradients_straight_through():
    w = torch.tensor([-1.0, -0.3, 0.0, 0.2, 0.5], requires_grad=True)
    q = quantize_ste(w, 3, w.detach().abs().max(), signed=True)  # 3 positive levels: step 1/3
    torch.testing.assert_close(q.detach(), torch.tensor([-1.0, -1 / 3, 0.0, 1 / 3, 2 / 3]))
    assert q.detach().abs().max() == 1.0 and torch.equal(
        q.detach().neg(), quantize_ste(-w, 3, 1.0, True).detach()
    )
    q.sum().backward()
    torch.testing.assert_close(w.grad, torch.ones(5))  # rounding is transparent to the gradient


def test_activation_quantiser_is_unsigned_and_clamped():
    x = torch.tensor([-1.0, 0.01, 1.0, 3.99, 9.0], requires_grad=True)
    q = quantize_ste(x, 8, 4.0, signed=False)
    step = 4.0 / 256  # the official LinQuantSteOp: int_max 2^8, 257 levels 0 … 4
    assert q[0] == 0 and q[-1] == 4.0
    grid = quantize_ste(torch.linspace(0, 4, 5000), 8, 4.0, signed=False)
    assert len(torch.unique(grid)) == 257
    torch.testing.assert_close(q[1:4].detach(), torch.round(x[1:4].detach() / step) * step)
    q.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))  # clamped ends get none


def test_quantized_generator_clamps_every_resnet_input_to_unsigned_as_the_official_code():
    teacher = tiny("resnet")
    student = slimmable_student(teacher)
    q = QuantizedGenerator.attach(student, 8, 4.0, probe=teacher)
    assert q.inputs["stem"] == "none"
    assert {k for n, k in q.inputs.items() if n != "stem"} == {"unsigned"}  # the trunk too: [0, 4]
    x = teacher.example_input((32, 32))
    seen = []
    handle = student.blocks[0].conv1.register_forward_hook(lambda m, a, o: seen.append(a[0]))
    student(x)
    handle.remove()
    q.remove()
    assert seen[0].min() >= 0 and seen[0].max() <= 4.0


def test_quantized_generator_skips_the_first_input_and_signs_from_the_probe():
    teacher = tiny("resnet")
    student = slimmable_student(teacher)
    q = QuantizedGenerator.attach(student, 8, 4.0, probe=teacher, inputs="probe")
    assert q.inputs["stem"] == "none" and q.inputs["down1"] == "unsigned" and q.inputs["head"] == "unsigned"
    assert q.inputs["up1"] == "signed"  # the residual trunk is not a ReLU output
    w = student.down1.weight  # the parametrised (quantised) weight
    scale = w.abs().max() / 127
    torch.testing.assert_close(w / scale, torch.round(w / scale))
    x = teacher.example_input((32, 32))
    fq = student(x)
    assert "down1.parametrizations.weight.0.bits" in student.state_dict()
    q.remove(bake=False)
    assert not torch.equal(fq, student(x))  # quantisation changed the output; removing it restores fp32
    torch.testing.assert_close(student.eval()(x), teacher.eval()(x))


# -- the student and exact channel removal -----------------------------------------------------------
@pytest.mark.parametrize("key", sorted(TINY))
def test_student_starts_as_the_teacher(key):
    teacher = tiny(key)
    student = slimmable_student(teacher)
    x = teacher.example_input((32, 32), batch=2)
    torch.testing.assert_close(student.eval()(x), teacher.eval()(x))


@pytest.mark.parametrize("key", sorted(TINY))
def test_removing_zero_gamma_channels_leaves_the_output_unchanged(key):
    student = slimmable_student(tiny(key))
    groups = scale_groups(student)
    kill_random_channels(student, groups)
    slim = remove_off_channels(student, groups, check=False)
    assert slim.family == student.family and slim.arch != student.arch
    assert slim.arch.fits_within(student.arch)
    x = student.example_input((32, 32), batch=2)
    torch.testing.assert_close(slim.eval()(x), student.eval()(x), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in student.parameters())


def test_trunk_channel_goes_only_when_every_writer_is_off_and_blocks_are_decided_per_block():
    student = slimmable_student(tiny("resnet"), layout="thirds")
    groups = scale_groups(student)
    assert set(groups["trunk"].norms) == {"down2_norm"} | {f"blocks.{i}.norm2" for i in range(6)}
    assert len(groups["hidden1"].parts) == 2  # blocks 0 and 1 keep their own inner channels
    with torch.no_grad():
        for name in groups["trunk"].norms:
            student.get_submodule(name).weight[:4] = 0  # channels 0-3 off in every writer
        student.get_submodule("down2_norm").weight[4:8] = 0  # 4-7 off in one writer only
        student.get_submodule("blocks.0.norm1").weight[:12] = 0  # block 0 keeps 4 inner channels
        student.get_submodule("blocks.1.norm1").weight[8:] = 0  # block 1 keeps 8 others
    arch = widths_at(student, groups)
    assert student.channels(arch)["trunk"] == 12 and student.channels(arch)["hidden1"] == 8
    slim = remove_off_channels(student, groups)  # the built-in output check passes
    assert slim.arch == arch


def test_unsupported_families_are_refused():
    with pytest.raises(ConfigError, match="families"):
        slimmable_student(create_generator("munit", base_width=4, mlp_dim=16))
    with pytest.raises(ConfigError, match="separable"):
        slimmable_student(create_generator("resnet", base_width=4, num_blocks=3, separable=True))


# -- training and control ----------------------------------------------------------------------------
def _train(rho: float, steps: int = 4, target: float | None = None):
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    student = slimmable_student(teacher)
    groups = scale_groups(student)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # spread scales, so a stronger rho crosses more of them
        for name in {n for grp in groups.values() for n in grp.norms}:
            gamma = student.get_submodule(name).weight
            gamma.copy_(torch.rand(gamma.shape, generator=g) * 1.5 + 0.05)
    task = GanSlimmingTask(
        student,
        teacher,
        None,
        SlimLoss(gan=0.0, distill="mse"),
        StageConfig(lr_g=1e-3),
        groups=groups,
        rho=rho,
        lr_gamma=0.1,
        momentum=0.0,
        target_macs=None if target is None else target * MacsTable(student, (16, 16))(student.arch),
        macs=None if target is None else MacsTable(student, (16, 16)),
    )
    opts = task.configure_optimizers()
    for step in range(steps):
        logs = task.training_step(
            {"A": torch.rand(1, 3, 16, 16, generator=g) * 2 - 1, "B": torch.zeros(1, 3, 16, 16)}, step, opts
        )
    return student, groups, logs


def test_larger_rho_leaves_fewer_channels_and_dead_channels_output_zero():
    alive = {}
    for rho in (0.0, 1.0, 2.5):
        student, groups, logs = _train(rho)
        alive[rho] = sum(alive_channels(student, groups).values())
        assert logs["alive_channels"] == alive[rho]
        for g in groups.values():
            for name in g.norms:
                norm = student.get_submodule(name)
                assert torch.all(norm.bias[norm.weight == 0] == 0)
    total = sum(g.channels for g in groups.values())
    assert total == alive[0.0] > alive[1.0] > alive[2.5]
    slim = remove_off_channels(student, groups)  # exact after real training steps too
    assert sum(slim.channels().values()) < sum(student.channels().values())


def test_a_macs_target_stops_the_proximal_step_before_it_is_passed():
    macs = None
    for target in (None, 0.5):
        student, groups, logs = _train(2.5, steps=6, target=target)
        macs = MacsTable(student, (16, 16))
        ratio = macs(widths_at(student, groups)) / macs(student.arch)
        if target is None:  # this rho alone goes far below half the MACs ...
            assert ratio < 0.5 and logs["prox_stopped"] == 0
        else:  # ... a target of half stops it above the target, and channels off stay off
            assert ratio >= 0.5 and logs["prox_stopped"] == 1
            assert sum(alive_channels(student, groups).values()) < sum(g.channels for g in groups.values())


def test_budget_control_reaches_the_target_and_reports_it():
    student = slimmable_student(tiny("resnet"))
    groups = scale_groups(student)
    kill_random_channels(student, groups, fraction=0.1)
    macs = MacsTable(student, (32, 32))
    full = macs(widths_at(student, groups))
    report = threshold_to_budget(student, groups, macs, 0.4 * full)
    reached = macs(widths_at(student, groups))
    assert reached <= 0.4 * full and report["threshold"] > 0 and report["switched_off"] > 0
    slim = remove_off_channels(student, groups)
    assert macs(slim.arch) == reached
    with pytest.raises(BudgetError, match="below"):
        threshold_to_budget(student, groups, macs, 10.0)


def test_vgg_style_distillation_is_content_plus_gram():
    class Feats(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return {
                n: self.conv(x) * (i + 1) for i, n in enumerate(("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
            }

    torch.manual_seed(0)
    vgg = Feats()
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    loss = OutputDistillation("vgg", vgg, style_weight=10.0)(a, b)
    fa, fb = vgg(a), vgg(b)
    content = (fa["relu1_2"] - fb["relu1_2"]).abs().mean()
    style = sum(((gram_matrix(fa[n]) - gram_matrix(fb[n])) ** 2).mean() for n in fa)
    torch.testing.assert_close(loss, content + 10.0 * style)
    assert "_frozen" not in dict(OutputDistillation("vgg", vgg).named_children())
    fake, real = torch.rand(1, 3, 16, 16, requires_grad=True), torch.rand(1, 3, 16, 16)
    weight_free = OutputDistillation("l1_ssim")
    assert float(weight_free(fake.detach(), fake.detach())) == pytest.approx(0.0, abs=1e-5)
    weight_free(fake, real).backward()
    assert fake.grad.abs().sum() > 0
    assert OutputDistillation("vgg", vgg).state_dict() == {}

    class ScaledFeats(Feats):  # a caffe-style backbone: the loss is taken on its rescaled features
        def perceptual(self, x):
            return {n: f * 0.25 for n, f in self(x).items()}

    scaled = ScaledFeats()
    scaled.load_state_dict(vgg.state_dict())
    fa, fb = scaled.perceptual(a), scaled.perceptual(b)
    content = (fa["relu1_2"] - fb["relu1_2"]).abs().mean()
    style = sum(((gram_matrix(fa[n]) - gram_matrix(fb[n])) ** 2).mean() for n in fa)
    torch.testing.assert_close(
        OutputDistillation("vgg", scaled, style_weight=10.0)(a, b), content + 10.0 * style
    )


# -- the registered runner ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    return build_font_dataset(tmp_path_factory.mktemp("gs_data") / "paired", size=32, max_chars=20, seed=0)


QUICK = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "discriminator.base_width=4",
    "slim.train.max_steps=4",
    "slim.train.checkpoint_every=2",
    "finetune.max_steps=2",
    "quant.calibration_images=4",
)


@pytest.mark.parametrize("bits", [32, 8])
def test_compress_end_to_end_saves_a_student_and_an_int8_onnx_that_runs(tmp_path, fonts, bits):
    from gancompress.export.onnx import onnx_metadata, ort_session, run_session

    torch.manual_seed(0)  # a fixed teacher: the quality gate then judges one known run
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    out = tmp_path / "run"
    # This 4-step GS-8 student of a random teacher gives one image for every input (so did it before
    # the quality gate existed): the gate would fail it, so it is off here, where the export is tested.
    gate = ("gate.enabled=false",) if bits == 8 else ()
    result = compress(
        "gan-slimming",
        teacher,
        fonts,
        out,
        MethodOptions(quick=True, bits=bits, ratio=0.5, overrides=QUICK + gate),
    )
    student = load_generator(out / "student")
    assert student.family == "resnet" and student.arch == result.generator.arch
    summary = json.loads((out / "method_summary.json").read_text())
    details = summary["details"]
    assert details["variant"] == f"GS-{bits}"
    assert details["reached_macs"] == summary["student"]["macs_paper"] <= summary["target"]["macs"]
    assert details["r_c"] >= 2.0 and details["r_s"] > (3.9 if bits == 8 else 1.0)
    assert details["held_out_vs_teacher"]["onnx_int8"]["images"] == 4
    assert onnx_metadata(out / "student.int8.onnx")["precision"] == "int8"
    x = teacher.example_input((32, 32))
    y = run_session(ort_session(out / "student.int8.onnx"), x)
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()
    torch.testing.assert_close(student(x), result.generator.eval()(x))
    if bits == 8:
        assert details["quantisation"]["inputs"]["stem"] == "none"
        w = student.down1.weight
        scale = w.abs().max() / 127
        torch.testing.assert_close(w / scale, torch.round(w / scale), atol=1e-3, rtol=0)  # baked on the grid


def test_resume_continues_the_slimming_stage_exactly(tmp_path, fonts):
    torch.manual_seed(0)  # a fixed teacher: the quality gate then judges one known run
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    opts = dict(quick=True, bits=8, overrides=QUICK + ("finetune.max_steps=0",))
    full = compress("gan-slimming", teacher, fonts, tmp_path / "full", MethodOptions(**opts))
    # the interrupted run: stop after the first checkpoint (step 2), then run again to the end
    compress(
        "gan-slimming",
        teacher,
        fonts,
        tmp_path / "cut",
        MethodOptions(**{**opts, "overrides": opts["overrides"] + ("slim.train.max_steps=2",)}),
    )
    resumed = compress("gan-slimming", teacher, fonts, tmp_path / "cut", MethodOptions(**opts))
    assert resumed.generator.arch == full.generator.arch
    for (k, a), (_, b) in zip(full.generator.state_dict().items(), resumed.generator.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)


def test_compress_rejects_bad_targets(tmp_path, fonts):
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    with pytest.raises(ConfigError, match="ratio"):
        compress(
            "gan-slimming", teacher, fonts, tmp_path, MethodOptions(quick=True, ratio=1.5, overrides=QUICK)
        )
    with pytest.raises(ConfigError, match="MACs target"):
        compress("gan-slimming", teacher, fonts, tmp_path, MethodOptions(quick=True, budget_latency_ms=5.0))
