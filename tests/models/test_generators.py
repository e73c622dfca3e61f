"""Every registered generator and discriminator at tiny size: shape, finite values, backward,
the supernet = subnet invariant, and MACs against a hand-computed formula."""

import pytest
import torch

from gancompress.arch import ArchSpec
from gancompress.errors import ArchSpecError, ConfigError
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_discriminator, create_generator, list_discriminators, list_generators
from tiny import TINY_GENERATORS, family_of


def test_every_registered_family_has_a_tiny_config():
    assert sorted({family_of(k) for k in TINY_GENERATORS}) == list_generators()


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_forward_backward(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key])
    x = g.example_input(batch=2)
    y = g(x)
    assert y.shape == (2, 3, *x.shape[2:])
    assert torch.isfinite(y).all()
    assert y.abs().max() <= 1.0
    y.square().mean().backward()
    grads = [p.grad for p in g.parameters() if p.requires_grad]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(gr.abs().sum() for gr in grads) > 0


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_narrower_spec_runs_and_matches_extracted_subnet(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key]).eval()
    for p in g.parameters():  # non-trivial weights, so a wrong slice would show
        p.data.normal_(0, 0.2)
    narrow = ArchSpec(g.family, tuple(max(1, w // 2) for w in g.arch.widths))
    x = g.example_input(batch=2)
    y_super = g(x, arch=narrow)
    sub = g.extract_subnet(narrow).eval()
    assert sub.arch == narrow
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in g.parameters())
    torch.testing.assert_close(sub(x), y_super, rtol=0, atol=1e-6)


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_feature_points(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key])
    names = list(g.feature_points)
    out, feats = g(g.example_input(batch=2), features=names)
    assert list(feats) == names
    narrow = ArchSpec(g.family, tuple(max(1, w // 2) for w in g.arch.widths))
    _, narrow_feats = g(g.example_input(batch=2), arch=narrow, features=names)
    expected = g.feature_channels(narrow)
    for name in names:
        got = narrow_feats[name].shape[1]
        assert got == expected[name], (name, got, expected[name])
    with pytest.raises(ConfigError, match="unknown feature point"):
        g(g.example_input(batch=2), features=["nope"])


def test_wider_arch_is_refused():
    g = create_generator("resnet", base_width=8)
    with pytest.raises(ArchSpecError, match="wider"):
        g(g.example_input(), arch="16_8_8_8_8_8_8_8")


def test_wrong_length_arch_names_the_groups():
    with pytest.raises(ArchSpecError, match="takes 8"):
        create_generator("resnet", arch="16_16_32")


def test_resnet_old_six_number_form():
    g = create_generator("resnet", arch="16_16_32_24_16_16", separable=True)
    assert str(g.arch) == "16_16_32_24_24_24_16_16"


def test_unknown_option_lists_known_ones():
    with pytest.raises(ConfigError, match="known"):
        create_generator("resnet", ngf=64)


def test_separable_resnet_macs_formula():
    """MACs of a tiny mobile ResNet computed by hand from the layer shapes (paper convention)."""
    g = create_generator("resnet", arch="2_2_2_1_2_2_2_2", separable=True, base_width=2)
    h = w = 32
    stem, d1, t, up1, up2 = 2, 4, 8, 4, 2
    macs = h * w * stem * 3 * 49  # stem 7x7
    macs += (h // 2) * (w // 2) * d1 * stem * 9  # down1
    hw = (h // 4) * (w // 4)
    macs += hw * t * d1 * 9  # down2
    for hidden in [4] * 3 + [8] * 6:
        macs += hw * t * 9 + hw * hidden * t + hw * hidden * 9 + hw * t * hidden  # dw, pw, dw, pw
    macs += (h // 2) * (w // 2) * up1 * t * 9  # ConvT on the output grid (paper)
    macs += h * w * up2 * up1 * 9
    macs += h * w * 3 * up2 * 49
    assert profile_generator(g, (h, w)).macs_paper == macs


@pytest.mark.parametrize("name", list_discriminators())
def test_discriminators(name):
    d = create_discriminator(name, in_channels=6, base_width=4, num_layers=2)
    x = torch.randn(2, 6, 32, 32, requires_grad=True)
    out, feats = d(x, return_features=True)
    logits = out if isinstance(out, list) else [out]
    assert all(torch.isfinite(o).all() and o.shape[1] == 1 for o in logits)
    assert len(feats) > 0
    sum(o.mean() for o in logits).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
