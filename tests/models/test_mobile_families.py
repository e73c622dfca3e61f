"""The mobile (separable) GauGAN and MUNIT families and the legacy ResNet layout, at tiny size:
the official layer layout (separable SPADE modulation, SPADE hidden width per block, MUNIT's ten
numbers), and the supernet = extracted subnet invariant on the new elastic widths."""

import pytest
import torch

from gancompress.arch import ArchSpec
from gancompress.errors import ConfigError
from gancompress.layers import ElasticSeparableConv2d
from gancompress.models import create_generator

MOBILE = {
    "spade": dict(preset=None, label_channels=5, base_width=4, size=(64, 64), num_upsampling_layers="normal"),
    "munit": dict(base_width=4, style_downsample=3, mlp_dim=16),
}


def _randomise(g):
    for p in g.parameters():
        p.data.normal_(0, 0.2)
    return g


@pytest.mark.parametrize("family", sorted(MOBILE))
def test_separable_subnet_matches_supernet(family):
    g = _randomise(create_generator(family, separable=True, **MOBILE[family])).eval()
    narrow = ArchSpec(family, (2, 3, 1, 2, 3, 1, 2, 3, 1, 2)[: len(g.arch.widths)])
    x = g.example_input(batch=2)
    sub = g.extract_subnet(narrow).eval()
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in g.parameters())
    torch.testing.assert_close(sub(x), g(x, arch=narrow), rtol=0, atol=1e-5)
    y = sub(x)
    y.square().mean().backward()
    assert all(p.grad is not None for p in sub.parameters())


def test_spade_separable_modulation_and_hidden_per_block():
    g = create_generator("spade", separable=True, arch="4_3_2_1_4_3_2_1", **MOBILE["spade"])
    # the SPADE hidden width is spade_hidden (128) x the block's number / base_width (4)
    assert g.head_0.norm_0.mlp_shared.out_channels == 128 * 3 // 4
    assert g.G_middle_1.norm_1.mlp_shared.out_channels == 128 * 1 // 4
    assert g.up_2.norm_s.mlp_shared.out_channels == 128 * 2 // 4
    for block in (g.head_0, g.up_0):
        assert isinstance(block.norm_0.mlp_gamma, ElasticSeparableConv2d)
        assert isinstance(block.norm_1.mlp_beta, ElasticSeparableConv2d)
    plain = create_generator("spade", arch="4_3_2_1_4_3_2_1", **MOBILE["spade"])
    assert isinstance(plain.head_0.norm_0.mlp_gamma, torch.nn.Conv2d)
    assert plain.head_0.norm_0.mlp_shared.out_channels == 96  # the plain family scales it too


def test_spade_teacher_keeps_gaugan_hidden_width():
    with torch.device("meta"):
        g = create_generator("spade", preset="cityscapes")
    widths = {
        m.mlp_shared.out_channels for n, m in g.named_modules() if n.endswith(("norm_0", "norm_1", "norm_s"))
    }
    assert widths == {128}


def test_munit_ten_numbers_on_the_official_layers():
    g = create_generator("munit", separable=True, arch="1_2_3_4_5_6_7_8_9_10", **MOBILE["munit"])
    assert g.style_stem.out_channels == 1
    assert [c.out_channels for c in g.style_down] == [2, 4, 4]
    assert g.content_stem.out_channels == 2 and g.content_down1.out_channels == 6
    assert g.content_down2.out_channels == 16
    assert [b.conv1.pointwise.out_channels for b in g.enc_blocks] == [20, 20, 24, 24]
    assert [b.conv1.pointwise.out_channels for b in g.dec_blocks] == [28, 28, 32, 32]
    assert g.up1.pointwise.out_channels == 18 and g.up2.pointwise.out_channels == 10
    assert isinstance(g.up1, ElasticSeparableConv2d) and isinstance(
        g.enc_blocks[0].conv2, ElasticSeparableConv2d
    )
    assert g(g.example_input((32, 32))).shape == (1, 3, 32, 32)


def test_resnet_legacy_layout_blocks():
    g = create_generator("resnet", separable=True, layout="legacy", arch="2_2_3_1_2_2", base_width=4)
    hidden = [b.conv1.pointwise.out_channels for b in g.blocks]
    assert hidden == [4, 12, 12, 4, 12, 12, 4, 12, 12]  # blocks 1, 4, 7 at c[3]; the others at the trunk
    thirds = create_generator("resnet", separable=True, arch="2_2_3_1_2_2", base_width=4)
    assert [b.conv1.pointwise.out_channels for b in thirds.blocks] == [4] * 9
    with pytest.raises(ConfigError, match="layout"):
        create_generator("resnet", layout="nope")


def test_resnet_legacy_subnet_matches_supernet():
    g = _randomise(create_generator("resnet", separable=True, layout="legacy", base_width=4)).eval()
    x = g.example_input((32, 32), batch=2)
    narrow = "2_3_2_1_3_2_3_2"
    torch.testing.assert_close(g.extract_subnet(narrow).eval()(x), g(x, arch=narrow), rtol=0, atol=1e-5)


def test_spade_prunes_at_the_official_hidden_ratio():
    """At GauGAN's ratio (hidden 2 × the block's number) the hidden channels are their own: pruning
    keeps their leading channels and the pruned network is the narrower one."""
    from gancompress.pruning import prune_by_importance

    kw = dict(MOBILE["spade"], spade_hidden=8)  # 2 × base_width, as 128 at ngf 64
    g = _randomise(create_generator("spade", separable=True, **kw)).eval()
    small = prune_by_importance(g, "3_2_4_1_2_3_4_1")
    assert str(small.arch) == "3_2_4_1_2_3_4_1"
    assert small.head_0.norm_0.mlp_shared.out_channels == 4
    assert torch.isfinite(small(g.example_input())).all()
