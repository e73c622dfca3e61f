"""The profiler must reproduce the published teacher figures (shared/REFERENCE.md)."""

import json

import pytest
import torch

from gancompress.cli import main
from gancompress.metrics.profile import profile_generator, profile_model
from gancompress.models import create_generator


def _meta(name, **kw):
    with torch.device("meta"):
        return create_generator(name, **kw)


@pytest.mark.parametrize(
    "name,kw,params,macs_paper,macs_true",
    [
        ("resnet", {}, 11_378_179, 56_799_264_768, 49_551_507_456),
        ("resnet", {"separable": True}, 1_987_075, 18_314_428_416, None),  # 1.99M, 18.31G
        ("resnet", {"separable": True, "base_width": 96}, 4_418_307, 40_155_217_920, None),  # 4.42M, 40.16G
        ("resnet", {"separable": True, "arch": "16_16_32_16_32_32_16_16"}, 356_867, 2_525_233_152, None),
        ("spade", {"preset": "cityscapes"}, 93_048_003, 281_356_632_064, None),  # 93.05M, 281.4G
        ("spade", {"preset": "coco"}, 97_480_899, 191_180_570_624, None),  # 97.48M, 191.2G
        ("munit", {}, 15_026_187, 77_295_849_472, None),  # 15.03M, 77.3G with the style encoder
        ("unet", {}, 54_413_955, None, None),  # 54.4M
    ],
)
def test_published_figures(name, kw, params, macs_paper, macs_true):
    r = profile_generator(_meta(name, **kw))
    assert r.params == params
    if macs_paper is not None:
        assert r.macs_paper == macs_paper
    if macs_true is not None:
        assert r.macs_true == macs_true


def test_published_figures_rounded():
    """The rounded table values, as the papers print them."""
    r = profile_generator(_meta("resnet"))
    assert (round(r.macs_paper / 1e9, 2), round(r.macs_true / 1e9, 2), round(r.params / 1e6, 3)) == (
        56.80,
        49.55,
        11.378,
    )
    assert round(profile_generator(_meta("spade", preset="cityscapes")).macs_paper / 1e9, 1) == 281.4
    assert round(profile_generator(_meta("spade", preset="coco")).macs_paper / 1e9, 1) == 191.2
    m = _meta("munit")
    assert round(profile_generator(m).macs_paper / 1e9, 1) == 77.3
    no_style = profile_model(m, m.example_input().to("meta"), style=torch.zeros(1, 8, device="meta"))
    assert round(no_style.macs_paper / 1e9, 1) == 71.0


def test_true_macs_match_flop_counter():
    """For convolution networks macs_true is half of torch.utils.flop_counter's FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    g = create_generator("resnet", base_width=4).eval()
    x = g.example_input((32, 32))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        g(x)
    r = profile_generator(g, (32, 32))
    assert r.macs_true * 2 == fc.get_total_flops()
    assert r.macs_paper > r.macs_true  # ConvTranspose counted on the output grid


def test_layer_breakdown_sums_to_total():
    g = create_generator("resnet", base_width=4, separable=True)
    r = profile_generator(g, (32, 32))
    assert sum(layer.macs_paper for layer in r.layers) == r.macs_paper
    names = {layer.name for layer in r.layers}
    assert "up1" in names and "blocks.0.conv1.pointwise" in names


def test_cli_profile_json(capsys):
    assert main(["profile", "resnet", "--size", "256", "256", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 11_378_179
    assert out["macs_paper"] == 56_799_264_768
    assert out["macs_true"] == 49_551_507_456
    assert out["input_shape"] == [1, 3, 256, 256]


def test_cli_profile_table(capsys):
    assert main(["profile", "resnet", "--separable", "--arch", "16_16_32_16_32_32_16_16"]) == 0
    text = capsys.readouterr().out
    assert "2.53G" in text and "356,867" in text


def test_cli_profile_errors(capsys):
    assert main(["profile", "nosuchfamily"]) == 2
    assert "families" in capsys.readouterr().err
    assert main(["profile", "resnet", "--arch", "1_2"]) == 2


# Every released compressed architecture of mit-han-lab/gan-compression (the strings of its
# scripts/*/latency_*.sh) against its README "Performance of released models" row. MACs in the
# README's convention: torchprofile with 1 MAC per non-affine norm element (macs_paper_with_norm).
RELEASED = [
    # family, options, string, README params, README MACs, exact params here
    ("resnet", {}, "24_24_24_32_20_16", 0.342e6, 2.67e9, 341_627),  # h2z GC (paper), see docs
    ("resnet", {}, "16_16_32_16_32_32_16_16", 0.357e6, 2.55e9, 356_867),  # h2z GC (retrained)
    ("resnet", {}, "16_16_24_16_32_64_16_24", 0.355e6, 2.64e9, 355_235),  # h2z Fast
    ("resnet", {"layout": "legacy"}, "32_32_40_48_16_32", 0.700e6, 4.81e9, 699_875),  # e2s GC (paper)
    ("resnet", {}, "32_32_48_32_48_48_16_16", 0.822e6, 4.99e9, 822_051),  # e2s GC (retrained)
    ("resnet", {}, "24_24_40_56_24_56_16_40", 0.703e6, 4.83e9, 702_835),  # e2s Fast
    ("resnet", {"layout": "legacy"}, "48_32_40_40_24_32", 0.707e6, 5.66e9, 707_347),  # cityscapes GC (paper)
    ("resnet", {}, "32_32_48_32_32_48_24_24", 0.781e6, 5.59e9, 780_819),  # cityscapes GC (retrained)
    ("resnet", {}, "32_32_48_32_48_32_16_16", 0.746e6, 4.68e9, 746_211),  # map2sat GC
    ("spade", {"preset": "cityscapes"}, "32_32_48_32_32_32_32_24", 20.4e6, 31.7e9, 20_425_019),  # GC (paper)
    ("spade", {"preset": "cityscapes"}, "32_40_40_32_40_24_32_24", 21.0e6, 31.2e9, 21_002_811),  # GC
    ("spade", {"preset": "cityscapes"}, "32_32_32_48_32_24_24_32", 20.2e6, 31.3e9, 20_174_275),  # Fast
    ("spade", {"preset": "coco"}, "40_32_32_40_32_40_24_24", 26.0e6, 35.5e9, 25_985_755),  # Fast
    ("munit", {}, "16_16_16_24_56_16_40_40_32_24", 1.10e6, 2.63e9, 1_100_347),  # e2s Fast
]
# Two released strings whose README rows belong to no network of that string: every reading of
# the official code gives these counts (docs/gan_compression.md, "Released architectures").
RELEASED_OFF_README = [
    ("resnet", "16_24_48_56_40_48_24_16", 886_307, 0.867e6),  # cityscapes Fast
    ("resnet", "16_16_40_40_40_64_24_16", 719_507, 0.708e6),  # map2sat Fast
]


@pytest.mark.parametrize("family,kw,arch,params,macs,exact", RELEASED, ids=[r[2] for r in RELEASED])
def test_released_architectures(family, kw, arch, params, macs, exact):
    r = profile_generator(_meta(family, separable=True, arch=arch, **kw))
    assert r.params == exact
    assert abs(r.params / params - 1) < 0.01
    assert abs((r.macs_paper + r.norm_elements) / macs - 1) < 0.01


@pytest.mark.parametrize("family,arch,exact,readme", RELEASED_OFF_README)
def test_released_architectures_off_readme(family, arch, exact, readme):
    r = profile_generator(_meta(family, separable=True, arch=arch))
    assert r.params == exact and abs(r.params / readme - 1) > 0.01


def test_legacy_layout_differs_from_thirds():
    """The same 6 numbers in the two official forms: one hidden width for all nine blocks, or for
    blocks 1, 4, 7 only (the other six at the trunk width)."""
    thirds = profile_generator(_meta("resnet", separable=True, arch="32_32_40_48_16_32"))
    legacy = profile_generator(_meta("resnet", separable=True, arch="32_32_40_48_16_32", layout="legacy"))
    assert legacy.params == 699_875
    assert round((legacy.macs_paper + legacy.norm_elements) / 1e9, 2) == 4.81
    assert thirds.params != legacy.params


@pytest.mark.parametrize(
    "argv,params,macs",
    [
        (
            ["spade", "--preset", "cityscapes", "--separable", "--arch", "32_40_40_32_40_24_32_24"],
            21_002_811,
            31.2,
        ),
        (
            ["munit", "--separable", "--arch", "16_16_16_24_56_16_40_40_32_24", "--size", "256", "256"],
            1_100_347,
            2.6,
        ),
        (["resnet", "--separable", "--layout", "legacy", "--arch", "32_32_40_48_16_32"], 699_875, 4.8),
    ],
)
def test_cli_profile_mobile_families(capsys, argv, params, macs):
    assert main(["profile", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == params
    assert round(out["macs_paper"] / 1e9, 1) == macs


def test_cli_layout_only_for_resnet(capsys):
    assert main(["profile", "unet", "--layout", "legacy"]) == 2
    assert "--layout" in capsys.readouterr().err
