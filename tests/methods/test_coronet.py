"""CoroNetGAN at tiny sizes: the hypernetwork, the proximal step, controlled pruning, the runner, resume."""

from __future__ import annotations

import json

import pytest
import torch

from gancompress.data import build_font_dataset
from gancompress.errors import BudgetError, ConfigError
from gancompress.export.saved import load_generator
from gancompress.methods import MethodOptions, compress
from gancompress.methods.common.macs import profile_arch
from gancompress.methods.common.recipe import StageConfig
from gancompress.methods.coronet import (
    CoronetTask,
    HyperGenerator,
    HyperKernel,
    PruneController,
    soft_threshold_,
)
from gancompress.methods.coronet.recipe import CoronetLoss
from gancompress.models import create_generator
from gancompress.pruning import coupled_tensors

TINY = {
    "resnet": dict(base_width=4, num_blocks=3),
    "resnet_separable": dict(base_width=4, num_blocks=3, separable=True),
    "unet": dict(base_width=4, num_downs=5),
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks gain nothing from threads, and on a busy shared CPU two spinning threads cost 10×.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(key: str):
    torch.manual_seed(0)
    return create_generator(key.split("_")[0], **TINY[key])


def macs_fn(generator, size=(32, 32)):
    cache = {}

    def fn(arch):
        if str(arch) not in cache:
            cache[str(arch)] = profile_arch(type(generator), generator.options, arch, size).macs_paper
        return cache[str(arch)]

    return fn


def random_masks(hyper: HyperGenerator, seed: int = 0) -> None:
    """Keep a random half (rounded to the multiplier) of every group."""
    g = torch.Generator().manual_seed(seed)
    for group in hyper.groups:
        n, m = hyper.mask(group).numel(), hyper.multipliers[group]
        keep = max(m, (n // m // 2) * m)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=g)[:keep]] = True
        hyper.set_mask(group, mask)


# -- the hypernetwork ------------------------------------------------------------------------------
def test_hyper_kernel_is_dhp_latent_embedding_explicit():
    hk = HyperKernel(3, 2, (3, 3), embedding_dim=4)
    for p in hk.parameters():
        p.data.normal_()
    z_out, z_in = torch.randn(3), torch.randn(2)
    k = hk(z_out, z_in)
    assert k.shape == (3, 2, 3, 3)
    i, j = 2, 1
    latent = z_out[i] * z_in[j] + hk.bias0[i, j]
    emb = latent * hk.weight1[i, j] + hk.bias1[i, j]
    expected = hk.weight2[i, j] @ emb + hk.bias2[i, j]
    torch.testing.assert_close(k[i, j].flatten(), expected)
    # selecting rows and columns is the same as generating everything and slicing
    sub = hk(z_out, z_in, torch.tensor([0, 2]), torch.tensor([1]))
    torch.testing.assert_close(sub, k[[0, 2]][:, [1]])


@pytest.mark.parametrize("key", sorted(TINY))
def test_generated_kernels_fit_every_conv_and_gradients_reach_latents(key):
    base = tiny(key)
    hyper = HyperGenerator(base, embedding_dim=2)
    state = base.state_dict()
    kinds = set()
    for k, spec in hyper.specs.items():
        assert hyper.kernel(k).shape == state[k].shape, k
        module = base.get_submodule(k.rpartition(".")[0])
        kinds.add("convT" if spec.transposed else "depthwise" if module.groups > 1 else "conv")
    expected = {
        "resnet": {"conv", "convT"},
        "resnet_separable": {"conv", "convT", "depthwise"},
        "unet": {"conv", "convT"},
    }
    assert kinds == expected[key]
    x = base.example_input((32, 32), batch=2)
    hyper(x).square().mean().backward()
    for group, z in hyper.latents.items():
        assert z.grad is not None and z.grad.abs().sum() > 0, group
    assert all(p.grad is None for k, p in base.named_parameters() if k in hyper.specs)


def test_residual_trunk_and_unet_skips_read_one_latent():
    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    writers = [s.key for s in hyper.specs.values() if s.out.group == "trunk"]
    assert "down2.weight" in writers and all(f"blocks.{i}.conv2.weight" in writers for i in range(3))
    unet = HyperGenerator(tiny("unet"), embedding_dim=2)
    skip = unet.specs["up.1.weight"]  # reads [skip of level 2, upsampled level 2]
    assert skip.transposed and skip.inp.group == "level2" and skip.inp.segments == 2
    assert skip.out.group == "level1"
    assert unet.specs["down.0.weight"].inp.group is None  # image channels: a fixed ones vector


def test_proximal_step_is_the_soft_threshold():
    z = torch.tensor([1.0, -0.3, 0.05, -0.05, 0.0, 2.5])
    soft_threshold_(z, 0.1)
    assert z.tolist() == pytest.approx([0.9, -0.2, 0.0, 0.0, 0.0, 2.4])
    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    before = {g: z.detach().clone() for g, z in hyper.latents.items()}
    ctl = PruneController(hyper, macs_fn(hyper.base), 1e12, regularization=2.0, threshold=0.0)
    ctl.step(hyper, lr=0.05, step=0)
    for g, z in hyper.latents.items():
        expected = torch.sign(before[g]) * torch.clamp(before[g].abs() - 0.1, min=0)
        torch.testing.assert_close(z.detach(), expected, rtol=0, atol=0)


# -- pruned network = extracted plain network -------------------------------------------------------
@pytest.mark.parametrize("key", sorted(TINY))
@pytest.mark.parametrize("train", [False, True])
def test_hypernet_output_equals_extracted_plain_generator(key, train):
    hyper = HyperGenerator(tiny(key), embedding_dim=2)
    for p in hyper.base.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.3)
    random_masks(hyper)
    x = hyper.base.example_input((32, 32), batch=2)
    hyper.train(train)
    plain = hyper.extract().train(train)
    assert type(plain) is type(hyper.base) and plain.arch == hyper.pruned_arch()
    assert plain.arch != hyper.base.arch
    with torch.no_grad():
        torch.testing.assert_close(hyper(x), plain(x), rtol=1e-5, atol=1e-5)
    # the plain generator is consistent on its own: every coupled tensor has the pruned width
    widths = plain.channels()
    for group, items in coupled_tensors(plain).items():
        for c in items:
            assert plain.state_dict()[c.key].shape[c.dim] == widths[group] * c.segments


def test_batchnorm_statistics_of_kept_channels_are_written_back():
    hyper = HyperGenerator(tiny("unet"), embedding_dim=2)
    random_masks(hyper)
    keep = hyper.keep_indices()["level2"]
    bn = hyper.base.down_norm[1]
    before = bn.running_mean.clone()
    hyper.train()(hyper.base.example_input((32, 32), batch=4))
    dropped = torch.tensor([i for i in range(before.numel()) if i not in keep.tolist()])
    assert not torch.equal(bn.running_mean[keep], before[keep])
    assert torch.equal(bn.running_mean[dropped], before[dropped])


# -- controlled pruning -------------------------------------------------------------------------------
def test_pruning_stops_at_the_target_and_reports_how_close():
    torch.manual_seed(1)
    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    fn = macs_fn(hyper.base)
    full = fn(hyper.base.arch)
    ctl = PruneController(hyper, fn, 0.3 * full, threshold=0.05, regularization=1.0, min_widths={"up2": 2})
    history = []
    for step in range(200):
        ctl.step(hyper, lr=0.02, step=step)
        history.append(ctl.macs(hyper))
        if bool(ctl.stopped):
            break
    assert bool(ctl.stopped)
    assert all(a >= b for a, b in zip(history, history[1:])), "masks only shrink"
    report = ctl.report(hyper)
    assert report["reached_macs"] <= 0.3 * full and report["under_target"]
    assert report["stop_step"] == step and report["forced_units"] == 0
    assert 0.5 < report["reached_over_target"] <= 1.0
    assert hyper.pruned_arch().widths[-1] >= 2  # per-group minimum width
    frozen = {g: hyper.mask(g).clone() for g in hyper.groups}
    ctl.step(hyper, lr=0.5, step=step + 1)  # stopped: no more proximal steps or mask changes
    assert all(torch.equal(hyper.mask(g), frozen[g]) for g in hyper.groups)


def test_finish_forces_the_target_and_infeasible_targets_are_refused():
    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    fn = macs_fn(hyper.base)
    full = fn(hyper.base.arch)
    ctl = PruneController(hyper, fn, 0.2 * full, threshold=0.0, regularization=0.0)
    ctl.step(hyper, lr=0.1, step=0)
    assert not bool(ctl.stopped)
    with pytest.raises(BudgetError, match="minimum widths"):
        PruneController(hyper, fn, 0.01 * full, groups=("trunk",))
    ctl2 = PruneController(
        hyper, fn, 0.5 * full, groups=("trunk", "hidden1", "hidden2", "hidden3", "up1", "down1")
    )
    ctl2.finish(hyper)
    report = ctl2.report(hyper)
    assert report["under_target"] and report["forced_units"] > 0
    assert hyper.pruned_arch().widths[0] == 4  # the stem was not in the pruned groups
    with pytest.raises(ConfigError, match="unknown width group"):
        PruneController(hyper, fn, full, groups=("nope",))


# -- the task and the training loop -------------------------------------------------------------------
def _task(seed=0):
    from gancompress.methods.gan_compression.distill import build_discriminator
    from gancompress.methods.gan_compression.recipe import DiscriminatorConfig

    torch.manual_seed(seed)
    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    fn = macs_fn(hyper.base)
    ctl = PruneController(hyper, fn, 0.4 * fn(hyper.base.arch), threshold=0.05, regularization=5.0)
    disc, _ = build_discriminator(DiscriminatorConfig(base_width=4, num_layers=2), 3, 3)
    stage = StageConfig(lr_g=1e-3, epochs=1)
    return CoronetTask(hyper, disc, CoronetLoss(), stage, objective="pix2pix", controller=ctl, lr_latent=0.05)


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, n=8):
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
        self.b = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


def test_resume_continues_pruning_exactly(tmp_path):
    from gancompress.training import fit

    kw = dict(batch_size=2, checkpoint_every=2, log_every=2, progress=False, tensorboard=False, num_samples=0)
    straight = _task()
    fit(straight, _Pairs(), tmp_path / "a", max_steps=6, **kw)
    first = _task()
    fit(first, _Pairs(), tmp_path / "b", max_steps=3, **kw)
    resumed = _task(seed=5)  # different fresh weights: everything must come from the checkpoint
    fit(resumed, _Pairs(), tmp_path / "b", max_steps=6, **kw)
    a, b = straight.state_dict(), resumed.state_dict()
    assert straight.hyper.pruned_arch() != straight.hyper.base.arch, "the run pruned something"
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_cyclegan_step_trains_both_directions():
    from gancompress.methods.gan_compression.distill import build_discriminator
    from gancompress.methods.gan_compression.recipe import DiscriminatorConfig

    hyper = HyperGenerator(tiny("resnet"), embedding_dim=2)
    reverse = tiny("resnet")
    cfg = DiscriminatorConfig(base_width=4, num_layers=2, conditional=False)
    d_b, _ = build_discriminator(cfg, 3, 3)
    d_a, _ = build_discriminator(cfg, 3, 3)
    loss = CoronetLoss(objective="cyclegan", gan_mode="lsgan")
    task = CoronetTask(
        hyper, d_b, loss, StageConfig(epochs=1), objective="cyclegan", reverse=reverse, discriminator_a=d_a
    )
    opts = task.configure_optimizers()
    before = reverse.head.weight.detach().clone()
    logs = task.training_step(
        _Pairs()[0] | {"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 32, 32)}, 0, opts
    )
    assert {"loss_gan_g", "loss_cycle", "loss_identity", "loss_d"} <= set(logs)
    assert not torch.equal(before, reverse.head.weight)
    assert "reverse.head.weight" in task.state_dict()


def test_feature_distillation_follows_the_pruned_channels():
    from gancompress.methods.coronet import LatentAdapters, feature_groups

    teacher = tiny("unet").eval()
    hyper = HyperGenerator(tiny("unet"), embedding_dim=2)
    random_masks(hyper)
    groups = feature_groups(hyper.base)
    assert groups["bottleneck"] == "level5" and groups["decoder2"] == "level2"
    points = ("bottleneck", "decoder2")
    s_ch, t_ch = hyper.base.feature_channels(), teacher.feature_channels()
    adapters = LatentAdapters({p: s_ch[p] for p in points}, {p: t_ch[p] for p in points}, groups)
    loss = CoronetLoss(gan=0.0, distill_output=1.0, distill_features=1.0)
    stage = StageConfig(epochs=1)
    task = CoronetTask(hyper, None, loss, stage, objective="pix2pix", teacher=teacher, adapters=adapters)
    x = teacher.example_input((32, 32), batch=2)
    hyper.eval()
    with torch.no_grad():
        fake, feats = task._student(x)
        t_out, t_feats = task._teacher(x)
        pruned = task._distill(fake, feats, t_out, t_feats)
        plain = hyper.extract().eval()
        narrowed = adapters.narrowed(hyper.keep_indices())
        p_fake, p_feats = plain(x, features=points)
        expected = narrowed(p_feats, t_feats)
    torch.testing.assert_close(pruned["distill_features"], expected)
    torch.testing.assert_close(pruned["distill_output"], torch.nn.functional.l1_loss(p_fake, t_out))


# -- the registered runner ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    root = tmp_path_factory.mktemp("coronet_data")
    return {
        "paired": build_font_dataset(root / "paired", size=32, max_chars=24, seed=0),
        "unpaired": build_font_dataset(root / "unpaired", size=32, max_chars=24, seed=0, paired=False),
    }


QUICK = (
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.holdout=4",
    "hypernet.embedding_dim=2",
    "discriminator.base_width=4",
    "prune.train.max_steps=4",
    "prune.train.checkpoint_every=2",
    "finetune.max_steps=2",
    "prune.regularization=20.0",
    "prune.lr_latent=0.05",
)


@pytest.mark.parametrize("key,data", [("resnet", "paired"), ("unet", "paired"), ("resnet", "unpaired")])
def test_compress_end_to_end_gives_a_loadable_student_under_target(tmp_path, fonts, key, data):
    teacher = tiny(key)
    out = tmp_path / "run"
    result = compress(
        "coronet", teacher, fonts[data], out, MethodOptions(quick=True, ratio=0.3, overrides=QUICK)
    )
    student = load_generator(out / "student")
    assert student.family == teacher.family and student.arch == result.generator.arch
    summary = json.loads((out / "method_summary.json").read_text())
    details = summary["details"]
    assert details["objective"] == ("cyclegan" if data == "unpaired" else "pix2pix")
    assert (
        summary["student"]["macs_paper"]
        <= summary["target"]["macs"]
        == pytest.approx(0.3 * summary["teacher"]["macs_paper"])
    )
    assert details["pruning"]["reached_macs"] == summary["student"]["macs_paper"]
    x = teacher.example_input((32, 32))
    torch.testing.assert_close(student(x), result.generator.eval()(x))
    if data == "paired":
        assert details["held_out"]["images"] == 4
    if key == "resnet" and data == "paired":  # a finished run is not resumed towards another target
        with pytest.raises(ConfigError, match="pruned towards"):
            compress(
                "coronet", teacher, fonts[data], out, MethodOptions(quick=True, ratio=0.2, overrides=QUICK)
            )


def test_compress_rejects_bad_targets(tmp_path, fonts):
    with pytest.raises(ConfigError, match="ratio"):
        compress(
            "coronet",
            tiny("resnet"),
            fonts["paired"],
            tmp_path,
            MethodOptions(quick=True, ratio=1.5, overrides=QUICK),
        )
    with pytest.raises(ConfigError, match="MACs target"):
        compress(
            "coronet",
            tiny("resnet"),
            fonts["paired"],
            tmp_path,
            MethodOptions(quick=True, budget_latency_ms=5.0),
        )
    with pytest.raises(ConfigError, match="families"):
        compress(
            "coronet",
            create_generator("munit", base_width=4, mlp_dim=16),
            fonts["paired"],
            tmp_path,
            MethodOptions(quick=True),
        )
