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
