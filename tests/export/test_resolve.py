"""The checkpoint resolver: every layout users have, built at tiny width in the official code's layouts."""

import functools
import json

import pytest
import torch
from torch import nn

from gancompress.cli import main
from gancompress.errors import CheckpointError, ConfigError
from gancompress.export.official import AmbiguousCheckpointError
from gancompress.export.resolve import Overrides, import_checkpoint, load_any_generator
from gancompress.export.saved import load_generator, save_generator
from gancompress.models import create_generator
from reference.gan_compression_networks import ResnetGenerator as GcResnetGenerator
from reference.pix2pix_networks import ResnetGenerator, UnetGenerator


def instance(affine=False):
    return functools.partial(nn.InstanceNorm2d, affine=affine, track_running_stats=False)


def randomise(net):
    """Non-trivial norm parameters and statistics, so a wrong norm mapping shows in the outputs."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.3)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2)
    return net.eval()


def images(net, size=32, batch=2):
    cin = net.model[1].in_channels if hasattr(net.model, "__getitem__") else net.model.model[0].in_channels
    return torch.rand(batch, cin, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def rename(state, old, new):
    return {k.replace(old, new): v for k, v in state.items()}


# (reference network, renaming of its keys, expected inferred options)
VARIANTS = {
    "cyclegan-resnet9-instance": (
        lambda: ResnetGenerator(3, 3, 8, norm_layer=instance(), n_blocks=9),
        None,
        dict(family="resnet", base_width=8, num_blocks=9, norm="instance", padding="reflect"),
    ),
    "resnet6-batch-dropout": (
        lambda: ResnetGenerator(3, 3, 4, norm_layer=nn.BatchNorm2d, use_dropout=True, n_blocks=6),
        None,
        dict(family="resnet", base_width=4, num_blocks=6, norm="batch"),
    ),
    "resnet4-affine-block-names": (
        lambda: ResnetGenerator(3, 3, 6, norm_layer=instance(True), n_blocks=4),
        (".conv_block.", ".block."),
        dict(family="resnet", base_width=6, num_blocks=4, norm="instance-affine"),
    ),
    "resnet5-zero-padding-net-names": (
        lambda: ResnetGenerator(1, 3, 4, norm_layer=instance(True), n_blocks=5, padding_type="zero"),
        ("model.", "net."),
        dict(family="resnet", in_channels=1, num_blocks=5, norm="instance-affine", padding="zero"),
    ),
    "gan-compression-resnet9": (
        lambda: GcResnetGenerator(3, 3, 8, norm_layer=instance(), dropout_rate=0, n_blocks=9),
        None,
        dict(family="resnet", base_width=8, num_blocks=9, norm="instance"),
    ),
    "unet5-batch": (
        lambda: UnetGenerator(3, 3, 5, ngf=4),
        None,
        dict(family="unet", base_width=4, num_downs=5, norm="batch"),
    ),
    "unet6-instance-dropout": (
        lambda: UnetGenerator(1, 3, 6, ngf=4, norm_layer=instance(), use_dropout=True),
        None,
        dict(family="unet", in_channels=1, num_downs=6, norm="instance"),
    ),
    "unet7-instance-affine": (
        lambda: UnetGenerator(3, 2, 7, ngf=4, norm_layer=instance(True)),
        None,
        dict(family="unet", out_channels=2, num_downs=7, norm="instance-affine"),
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_inferred_and_equal(tmp_path, name):
    make, renaming, expected = VARIANTS[name]
    ref = randomise(make())
    state = ref.state_dict()
    if renaming:
        state = rename(state, *renaming)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    g, prov = load_any_generator(path)
    assert prov.family == expected.pop("family")
    for key, value in expected.items():
        assert prov.options[key] == value, key
    assert any(line.startswith("  norm: read from the file") for line in prov.lines())
    size = 128 if prov.family == "unet" else 32  # a 7-level U-Net needs 128 px
    x = images(ref, size)
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-5)


def test_train_mode_matches_with_dropout_known():
    """pix2pix --use_dropout (rate 0.5) and gan-compression's zero-rate slot, in train mode too."""
    for ref, rate in (
        (ResnetGenerator(3, 3, 4, norm_layer=nn.BatchNorm2d, use_dropout=True, n_blocks=6), 0.5),
        (GcResnetGenerator(3, 3, 4, norm_layer=instance(), dropout_rate=0, n_blocks=9), 0.0),
        (UnetGenerator(3, 3, 7, ngf=4, norm_layer=instance(), use_dropout=True), 0.5),
    ):
        g, prov = load_any_generator(ref.state_dict(), Overrides(dropout=rate), train=True)
        assert prov.overridden["dropout"] == rate
        ref.train(), g.train()
        x = images(ref, 128)
        torch.manual_seed(5)
        want = ref(x)
        torch.manual_seed(5)
        torch.testing.assert_close(g(x), want, rtol=0, atol=1e-5)


def test_dropout_rate_is_ambiguous_for_training():
    ref = GcResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=9)
    with pytest.raises(AmbiguousCheckpointError, match="--dropout 0.5.*--dropout 0") as info:
        load_any_generator(ref.state_dict(), train=True)
    assert len(info.value.candidates) == 2
    # a CycleGAN file without a dropout slot is not ambiguous
    g, prov = load_any_generator(ResnetGenerator(3, 3, 4, instance(), n_blocks=9).state_dict(), train=True)
    assert "dropout" in prov.found and g.options["dropout"] == 0.0


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd},
        lambda sd: {"G": sd, "epoch": 3},
        lambda sd: {"netG": sd, "optimizer": {"lr": torch.tensor(0.1)}},
        lambda sd: {"model": sd},
        lambda sd: {"generator": {"module." + k: v for k, v in sd.items()}},
        lambda sd: {"module." + k: v for k, v in sd.items()},
        lambda sd: {
            "state_dict": {f"netG.{k}": v for k, v in sd.items()}
            | {"netD.model.0.weight": torch.ones(4, 6, 4, 4)}
        },
    ],
)
def test_wrapped_and_prefixed_dicts(tmp_path, wrap):
    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(True), n_blocks=3))
    torch.save(wrap(ref.state_dict()), tmp_path / "ckpt.pth")
    g, prov = load_any_generator(tmp_path / "ckpt.pth")
    x = images(ref)
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-5)


def test_two_generators_are_ambiguous_until_an_entry_is_named(tmp_path):
    g_a = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=3))
    g_b = ResnetGenerator(3, 3, 8, norm_layer=instance(), n_blocks=3).eval()
    torch.save({"G_A": g_a.state_dict(), "G_B": g_b.state_dict()}, tmp_path / "cyclegan.pth")
    with pytest.raises(AmbiguousCheckpointError, match="--entry G_A.*--entry G_B"):
        load_any_generator(tmp_path / "cyclegan.pth")
    g, prov = load_any_generator(tmp_path / "cyclegan.pth", Overrides(entry="G_B"))
    assert prov.entry == "G_B" and g.options["base_width"] == 8
    with pytest.raises(CheckpointError, match="no state dict under --entry 'G_C'"):
        load_any_generator(tmp_path / "cyclegan.pth", Overrides(entry="G_C"))


def test_overrides(tmp_path):
    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(True), n_blocks=3, padding_type="replicate"))
    state = ref.state_dict()
    x = images(ref)
    g, prov = load_any_generator(state)
    assert prov.options["padding"] == "reflect"  # replicate looks the same in the file
    with torch.no_grad():
        assert (g(x) - ref(x)).abs().max() > 1e-3
        g, prov = load_any_generator(state, Overrides(padding="replicate"))
        torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-5)
    assert "padding: 'replicate' as given on the command line" in "\n".join(prov.lines())
    with pytest.raises(CheckpointError, match="unexpected keys"):  # affine weights have no place in plain IN
        load_any_generator(state, Overrides(norm="instance"))
    with pytest.raises(CheckpointError, match="--num-blocks 9 contradicts the file, which holds 3"):
        load_any_generator(state, Overrides(num_blocks=9))
    with pytest.raises(ConfigError, match="--num-downs applies to U-Net"):
        load_any_generator(state, Overrides(num_downs=5))
    with pytest.raises(CheckpointError, match="U-Net"):
        load_any_generator(state, Overrides(family="unet"))
    with pytest.raises(ConfigError, match="--norm must be one of"):
        Overrides(norm="group")


def test_old_instance_norm_statistics_are_dropped():
    """Old PyTorch saved running statistics for InstanceNorm; the official loader drops them, so do we."""
    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=3))
    norms = {name for name, m in ref.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    convs = {name: m for name, m in ref.named_modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)}
    state = {}
    for name in [n for n, _ in ref.named_modules()]:
        if name in convs:
            state[f"{name}.weight"], state[f"{name}.bias"] = convs[name].weight, convs[name].bias
        elif name in norms:
            width = state[next(reversed(state))].shape[0]
            state[f"{name}.running_mean"], state[f"{name}.running_var"] = (
                torch.zeros(width),
                torch.ones(width),
            )
    g, prov = load_any_generator(state)
    assert prov.options["norm"] == "instance"
    x = images(ref)
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-5)


def test_saved_directories_and_folders(tmp_path):
    g0 = create_generator("resnet", base_width=4, num_blocks=3)
    save_generator(g0, tmp_path / "saved")
    g, prov = load_any_generator(tmp_path / "saved")
    assert prov.format == "saved" and g.arch == g0.arch
    with pytest.raises(ConfigError, match="saved generator.*--norm"):
        load_any_generator(tmp_path / "saved", Overrides(norm="batch"))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    ref = ResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=3)
    torch.save(ref.state_dict(), folder / "latest_net_G_A.pth")
    assert load_any_generator(folder)[1].source.endswith("latest_net_G_A.pth")
    torch.save(ref.state_dict(), folder / "latest_net_G_B.pth")
    with pytest.raises(AmbiguousCheckpointError, match="latest_net_G_B.pth"):
        load_any_generator(folder)


def test_not_a_generator_is_named():
    with pytest.raises(CheckpointError, match="neither a ResNet|not a ResNet or U-Net"):
        load_any_generator({"model.0.weight": torch.zeros(4, 3, 3, 3)})
    with pytest.raises(CheckpointError, match=r"x\.y\.weight"):
        load_any_generator({"x.y.weight": torch.zeros(2, 2)})
    ref = ResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=3)
    state = ref.state_dict()
    state["model.11.conv_block.5.weight"] = torch.zeros(16, 8, 3, 3)  # wrong shape
    with pytest.raises(CheckpointError, match=r"model\.11\.conv_block\.5\.weight"):
        load_any_generator(state)


def test_import_verb_writes_a_checked_directory(tmp_path, capsys):
    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(True), n_blocks=3))
    torch.save(rename(ref.state_dict(), ".conv_block.", ".block."), tmp_path / "latest_net_G.pth")
    assert main(["import", str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "g"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "resnet" and report["options"]["norm"] == "instance-affine"
    assert report["max_abs_diff"] <= 1e-5
    g = load_generator(tmp_path / "g")
    x = images(ref)
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-5)
    # a dropout slot: the import is for training too, so the rate must be given
    gc = GcResnetGenerator(3, 3, 4, norm_layer=instance(), n_blocks=3)
    torch.save(gc.state_dict(), tmp_path / "gc.pth")
    assert main(["import", str(tmp_path / "gc.pth"), "--out", str(tmp_path / "gc")]) == 2
    assert "--dropout 0" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "gc.pth"), "--out", str(tmp_path / "gc"), "--dropout", "0"]) == 0
    assert load_generator(tmp_path / "gc").options["dropout"] == 0.0


def test_import_check_catches_a_wrong_mapping(tmp_path, monkeypatch):
    from gancompress.export import official

    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(True), n_blocks=3))
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    real = official.reference_forward
    monkeypatch.setattr(official, "reference_forward", lambda *a: real(*a) + 0.01)
    with pytest.raises(CheckpointError, match="differs from the checkpoint's own layers"):
        import_checkpoint(tmp_path / "g.pth", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_verb_reads_a_pth(tmp_path, capsys):
    """profile and export take the .pth and its overrides (compress/evaluate/benchmark share the resolver)."""
    ref = randomise(ResnetGenerator(3, 3, 4, norm_layer=instance(True), n_blocks=3))
    torch.save(rename(ref.state_dict(), ".conv_block.", ".block."), tmp_path / "latest_net_G.pth")
    assert main(["profile", str(tmp_path / "latest_net_G.pth"), "--size", "32", "32", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["family"] == "resnet"
    assert "norm: read from the file" in captured.err
    assert main(["profile", str(tmp_path / "latest_net_G.pth"), "--norm", "batch"]) == 2
    assert "running_mean" in capsys.readouterr().err
    out = tmp_path / "onnx"
    args = ["export", str(tmp_path / "latest_net_G.pth"), "--out", str(out), "--formats", "onnx"]
    assert main(args) == 0
    assert (out / "model.onnx").is_file()
