"""GAN Slimming as VITA-Group/GAN-Slimming runs it: cosine LR, a width per residual block, the
pooled discriminator."""

import math

import pytest
import torch
from torch import nn

from gancompress.errors import ConfigError
from gancompress.methods.gan_slimming.schedule import CosineLR, cosine_decay
from gancompress.methods.gan_slimming.slim import remove_off_channels, scale_groups, slimmable_student
from gancompress.models import create_discriminator, create_generator
from gancompress.training import fit


def test_cosine_decay_matches_torch_cosine_annealing_per_epoch():
    epochs, per_epoch = 10, 3
    f = cosine_decay(epochs * per_epoch, per_epoch)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for epoch in range(epochs):
        for s in range(per_epoch):
            assert f(epoch * per_epoch + s) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-9)
        opt.step()
        ref.step()
    per_step = cosine_decay(100)
    assert (per_step(0), per_step(50), per_step(100)) == (1.0, 0.5, 0.0)
    with pytest.raises(ConfigError):
        cosine_decay(0)


class _Task(nn.Module):
    """A one-parameter task whose logs carry every optimizer's learning rate."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.g = nn.Parameter(torch.zeros(1))

    def configure_optimizers(self):
        return {"G": torch.optim.Adam([self.w], lr=1e-3), "gamma": torch.optim.SGD([self.g], lr=0.1)}

    def training_step(self, batch, step, optimizers):
        for opt in optimizers.values():
            opt.zero_grad()
        (self.w.sum() + self.g.sum() + batch["A"].mean() * 0).backward()
        for opt in optimizers.values():
            opt.step()
        return {f"lr_{k}": o.param_groups[0]["lr"] for k, o in optimizers.items()}


class _Data(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"A": torch.zeros(1)}


def test_cosine_callback_drives_every_optimizer_in_fit(tmp_path):
    seen = []

    class Record(CosineLR):
        def on_step_end(self, state, logs):
            seen.append({k: o.param_groups[0]["lr"] for k, o in state.optimizers.items()})

    fit(_Task(), _Data(), tmp_path / "run", batch_size=1, max_steps=8, callbacks=[Record()], num_samples=0)
    # after step s the rate is the factor at s
    for s, lrs in enumerate(seen, start=1):
        f = 0.5 * (1 + math.cos(math.pi * s / 8))
        assert lrs["G"] == pytest.approx(1e-3 * f) and lrs["gamma"] == pytest.approx(0.1 * f)


def test_slim_student_has_a_width_per_residual_block():
    teacher = create_generator("resnet", base_width=4, num_blocks=6)
    student = slimmable_student(teacher)
    assert student.options["layout"] == "blocks"
    assert [g.name for g in student.width_groups][3:9] == [f"block{i}" for i in range(1, 7)]
    x = teacher.example_input((32, 32), batch=2)
    torch.testing.assert_close(student.eval()(x), teacher.eval()(x))
    groups = scale_groups(student, ["stem", "hidden1", "hidden3"])  # thirds' names still read
    assert set(groups) == {"stem", "block1", "block2", "block5", "block6"}
    groups = scale_groups(student)
    with torch.no_grad():  # switch off different numbers of inner channels per block
        for i, keep in enumerate([1, 2, 3, 4, 2, 1]):
            norm = student.blocks[i].norm1
            norm.weight[keep * 4 :] = 0
            norm.bias[keep * 4 :] = 0
    slim = remove_off_channels(student, groups)
    assert [slim.channels()[f"block{i + 1}"] for i in range(6)] == [4, 8, 12, 16, 8, 4]
    torch.testing.assert_close(slim.eval()(x), student.eval()(x), atol=1e-5, rtol=1e-5)


def test_pooled_discriminator_is_the_official_one():
    d = create_discriminator("pooled", in_channels=3)
    x = torch.randn(2, 3, 64, 64)
    out = d(x)
    assert out.shape == (2, 1)
    # conv 3→64 (no norm), 64→128, 128→256, 256→512 (instance norm, affine), 512→1: 2,766,529 parameters
    assert sum(p.numel() for p in d.parameters()) == 2_766_529


def _cosine_per_epoch(per_epoch: int, epochs: int):
    return lambda step: 0.5 * (1 + math.cos(math.pi * (step // per_epoch) / epochs))


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_recipe_lr_schedule_sets_the_learning_rate_of_both_stages(tmp_path, schedule):
    """``lr_schedule: cosine`` (the paper recipes): G, D and γ follow the official per-epoch cosine in the
    slimming and the fine-tuning stage; ``linear`` keeps the loop's constant-then-linear decay."""
    import csv

    from gancompress.data.fonts import build_font_dataset
    from gancompress.methods import MethodOptions, compress
    from gancompress.methods.common.stage import stage_steps
    from gancompress.methods.gan_slimming.recipe import load_recipe
    from gancompress.training.loop import linear_decay

    data = build_font_dataset(tmp_path / "fonts", size=32, max_chars=12, seed=0)
    torch.manual_seed(0)
    teacher = create_generator("resnet", base_width=4, num_blocks=3)
    overrides = (
        f"lr_schedule={schedule}", "data.load_size=32", "data.crop_size=32", "data.batch_size=2",
        "data.holdout=2", "discriminator.base_width=4", "quant.calibration_images=2", "gate.enabled=false",
        "slim.train={epochs: 1, decay_epochs: 2, lr_g: 0.0002, lr_d: 0.0004, log_every: 1}",
        "finetune={epochs: 0, decay_epochs: 2, lr_g: 0.0001, lr_d: 0.0003, log_every: 1}",
    )  # fmt: skip
    out = tmp_path / "run"
    summary = compress(
        "gan-slimming", teacher, data, out, MethodOptions(quick=True, overrides=overrides)
    ).summary
    recipe = load_recipe(out / "recipe.yaml")
    assert recipe.lr_schedule == schedule
    stages = (("slim", recipe.slim.train, recipe.slim.lr_gamma), ("finetune", recipe.finetune, None))
    for stage, cfg, lr_gamma in stages:
        total = summary["stages"][stage]["steps"]
        epochs = cfg.epochs + cfg.decay_epochs
        per_epoch = total // epochs
        assert per_epoch >= 2 and total == per_epoch * epochs
        if schedule == "cosine":  # the factor of torch's CosineAnnealingLR(T_max=epochs), stepped per epoch
            factor = _cosine_per_epoch(per_epoch, epochs)
        else:
            factor = linear_decay(total, stage_steps(cfg, per_epoch * recipe.data.batch_size, 2)[1])
        with open(out / stage / "logs" / "train.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["step"]) for r in rows] == list(range(1, total + 1))
        for r in rows:  # logged after the step: the rate of the next step
            s = int(r["step"])
            assert float(r["lr_G"]) == pytest.approx(cfg.lr_g * factor(s), rel=1e-6, abs=1e-12), (stage, s)
            assert float(r["lr_D"]) == pytest.approx(cfg.lr_d * factor(s), rel=1e-6, abs=1e-12), (stage, s)
            if lr_gamma is not None:
                assert float(r["lr_gamma"]) == pytest.approx(lr_gamma * factor(s), rel=1e-6, abs=1e-12)
