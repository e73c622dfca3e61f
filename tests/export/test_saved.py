import functools
import json

import pytest
import torch
from torch import nn

from gancompress.errors import CheckpointError
from gancompress.export.official import import_official_generator
from gancompress.export.saved import load_generator, save_generator
from gancompress.models import create_generator
from reference.pix2pix_networks import ResnetGenerator, UnetGenerator
from tiny import TINY_GENERATORS, family_of


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_save_load_identical(tmp_path, key):
    g = create_generator(family_of(key), arch=None, **TINY_GENERATORS[key]).eval()
    for p in g.parameters():
        p.data.normal_(0, 0.2)
    save_generator(g, tmp_path / "g", extra={"method": "test"})
    h = load_generator(tmp_path / "g")
    x = g.example_input(batch=2)
    assert torch.equal(g(x), h(x))
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["family"] == g.family and cfg["meta"] == {"method": "test"}


def test_save_replaces_atomically(tmp_path):
    g = create_generator("resnet", base_width=4)
    save_generator(g, tmp_path / "g")
    g2 = create_generator("resnet", base_width=4, arch="2_2_2_2_2_2_2_2")
    save_generator(g2, tmp_path / "g")
    assert str(load_generator(tmp_path / "g").arch) == "2_2_2_2_2_2_2_2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temp or backup left behind


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda c: c.update(format="other"), "format"),
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c.update(family="nosuch"), "unknown generator"),
        (lambda c: c.update(arch="1_2_3"), "takes 8"),
        (lambda c: c.update(arch=7), "arch"),
        (lambda c: c["options"].update(bogus=1), "bogus"),
    ],
)
def test_malformed_config(tmp_path, mutate, match):
    save_generator(create_generator("resnet", base_width=4), tmp_path / "g")
    cfg_path = tmp_path / "g" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    mutate(cfg)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=match):
        load_generator(tmp_path / "g")


def test_not_json_and_truncated_weights(tmp_path):
    save_generator(create_generator("resnet", base_width=4), tmp_path / "g")
    weights = tmp_path / "g" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_generator(tmp_path / "g")
    (tmp_path / "g" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_generator(tmp_path / "g")


def _instance():
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


def _randomise(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return net.eval()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResnetGenerator(3, 3, 8, norm_layer=_instance(), n_blocks=9),
        lambda: ResnetGenerator(3, 3, 4, norm_layer=nn.BatchNorm2d, use_dropout=True, n_blocks=6),
        lambda: UnetGenerator(3, 3, 5, ngf=4),
        lambda: UnetGenerator(1, 3, 6, ngf=4, norm_layer=_instance(), use_dropout=True),
    ],
)
def test_official_importer_same_outputs(tmp_path, make):
    ref = _randomise(make())
    path = tmp_path / "latest_net_G.pth"
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, path)  # as DataParallel saves it
    g = import_official_generator(path)
    x = torch.randn(
        2,
        ref.model[1].in_channels if isinstance(ref, ResnetGenerator) else ref.model.model[0].in_channels,
        64,
        64,
    )
    torch.testing.assert_close(g(x), ref(x), rtol=0, atol=1e-6)


def test_official_importer_lists_bad_keys(tmp_path):
    ref = ResnetGenerator(3, 3, 4, norm_layer=_instance(), n_blocks=9)
    state = ref.state_dict()
    state.pop("model.10.conv_block.5.weight")
    state["model.99.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"model\.99\.weight"):
        import_official_generator(state)
    state.pop("model.99.weight")
    with pytest.raises(CheckpointError, match=r"model\.10\.conv_block\.5\.bias"):
        import_official_generator(state)
    state.pop("model.10.conv_block.5.bias")
    with pytest.raises(CheckpointError, match=r"model\.10\.conv_block: a residual block with 1 conv"):
        import_official_generator(state)


def test_crafted_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        import_official_generator(path)


def test_full_disk_keeps_the_previous_model(tmp_path, monkeypatch):
    import errno

    from gancompress.errors import StorageError
    from gancompress.export import saved

    g = create_generator("resnet", base_width=4)
    save_generator(g, tmp_path / "g")
    before = (tmp_path / "g" / "model.safetensors").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(saved, "save_file", full)
    with pytest.raises(StorageError, match="No space left"):
        save_generator(create_generator("resnet", base_width=4, arch="2_2_2_2_2_2_2_2"), tmp_path / "g")
    assert (tmp_path / "g" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_unwritable_parent_is_a_clear_error(tmp_path):
    from gancompress.errors import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot write"):
        save_generator(create_generator("resnet", base_width=4), blocker / "g")
