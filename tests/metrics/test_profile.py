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
