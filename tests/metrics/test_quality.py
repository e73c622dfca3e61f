"""The search's feature metric, the domain extractors (format and the shipped ones), paired metrics."""

import json

import numpy as np
import pytest
import torch
from helpers_metrics import MeanPool, write_domain_extractor

from gancompress.data import TransformConfig, build_dataset, build_font_dataset
from gancompress.data.fonts import TARGET_FONT
from gancompress.errors import CheckpointError, ConfigError
from gancompress.metrics import domain, paired, quality
from gancompress.metrics.domain import list_domain_extractors, load_domain_extractor
from gancompress.metrics.fid import FeatureStats, fid_from_stats


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory):
    """Real target-face glyphs at 64 px (the embedded dataset's size) as one (N, 3, 64, 64) tensor in [-1, 1]."""
    root = build_font_dataset(
        tmp_path_factory.mktemp("g") / "f", size=64, target=TARGET_FONT, max_chars=60, seed=2
    )
    ds = build_dataset(root, "paired", "train", TransformConfig.for_eval(64))
    return torch.stack([ds[i]["B"] for i in range(len(ds))])


def test_domain_extractor_file_round_trip(tmp_path):
    meta = write_domain_extractor(tmp_path, "toy", confident_class=1)
    ext = load_domain_extractor(meta)
    images = torch.rand(4, 3, 24, 24) * 2 - 1
    assert ext.name == "domain/toy" and ext(images).shape == (4, 8) and ext.num_features == 8
    assert ext.predict(images).argmax(1).tolist() == [1, 1, 1, 1]
    bad = json.loads(meta.read_text())
    bad["arch"]["name"] = "resnet50"
    meta.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="unknown domain classifier arch 'resnet50'"):
        load_domain_extractor(meta)
    with pytest.raises(CheckpointError, match="no domain extractor 'nope'.*known: "):
        load_domain_extractor("nope")


def test_shipped_extractors_are_small_and_describe_themselves():
    names = list_domain_extractors()
    assert {"fonts", "fashion"} <= set(names)
    for name in names:
        ext = load_domain_extractor(name)
        assert (domain.assets_dir() / f"{name}.safetensors").stat().st_size < 2 * 1024 * 1024
        assert ext.info["trained_by"].startswith("scripts/train_domain_extractors.py")
        assert all(0.0 <= v <= 1.0 for v in ext.info["accuracy"].values())


def test_shipped_fonts_extractor_recognises_real_glyphs(glyphs, tmp_path):
    ext = load_domain_extractor("fonts")
    root = build_font_dataset(tmp_path / "f", size=64, target=TARGET_FONT, max_chars=60, seed=2)
    ds = build_dataset(root, "paired", "train", TransformConfig.for_eval(64))
    classes = {c: i for i, c in enumerate(ext.classes)}
    targets = torch.tensor([classes[int(ds.paths[i].stem[2:], 16)] for i in range(len(ds))])
    with torch.no_grad():
        accuracy = float((ext.predict(glyphs).argmax(1) == targets).float().mean())
    assert accuracy >= 0.9  # 97 % on all 478 characters (its JSON, target_face_plain)


def test_search_metric_picks_the_fonts_extractor_and_ranks(glyphs):
    assert quality.search_extractor(glyphs) == "domain:fonts"
    reals, fakes = glyphs[:24], glyphs[24:48]
    noise = torch.rand_like(fakes) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(fakes, 3, 1, 1)
    for metric in ("fid", "kid"):
        good = quality.feature_metric_for_search(fakes, reals, metric)
        worse = quality.feature_metric_for_search(blurred, reals, metric)
        worst = quality.feature_metric_for_search(noise, reals, metric)
        assert good < worse < worst
    # Lists of batches (the search's held-out slice) give the same value as one tensor.
    as_list = quality.feature_metric_for_search(list(fakes.split(8)), list(reals.split(8)), "fid")
    assert as_list == pytest.approx(quality.feature_metric_for_search(fakes, reals, "fid"))


def test_search_metric_falls_back_when_no_domain_extractor_knows_the_images(monkeypatch, tmp_path):
    write_domain_extractor(tmp_path, "unsure")  # random head: no confident class
    monkeypatch.setattr(domain, "assets_dir", lambda: tmp_path)
    loaded = []

    def fake_load(spec):
        loaded.append(spec)
        if spec.startswith("domain:"):
            return load_domain_extractor(tmp_path / f"{spec[7:]}.json")
        return MeanPool()  # stands in for the VGG16 here

    monkeypatch.setattr(quality, "_load", fake_load)
    colour = torch.rand(8, 3, 16, 16) * 2 - 1
    assert (
        quality.search_extractor(colour) == "vgg-hed" and "domain:unsure" not in loaded
    )  # colour: no gray classifier
    gray = torch.rand(8, 1, 16, 16).expand(-1, 3, -1, -1) * 2 - 1
    assert quality.search_extractor(gray.contiguous()) == "vgg-hed" and "domain:unsure" in loaded
    write_domain_extractor(tmp_path, "sure", confident_class=0)
    assert quality.search_extractor(gray.contiguous() * 0.5) == "domain:sure"
    value = quality.feature_metric_for_search(colour, colour.flip(0), "fid")
    expected = fid_from_stats(
        FeatureStats.from_features(MeanPool()(colour.flip(0)).double()),
        FeatureStats.from_features(MeanPool()(colour).double()),
    )
    assert value == pytest.approx(expected, abs=1e-9)


def test_search_metric_rejects_unknown_metrics_and_shapes(glyphs):
    with pytest.raises(ConfigError, match="mIoU needs the label maps"):
        quality.feature_metric_for_search(glyphs[:4], glyphs[4:8], "miou")
    with pytest.raises(ConfigError, match="one of fid, kid, miou"):
        quality.feature_metric_for_search(glyphs[:4], glyphs[4:8], "is")
    with pytest.raises(ConfigError, match="N x 3 x H x W"):
        quality.feature_metric_for_search(glyphs[:4, :1], glyphs[4:8], "fid")
    with pytest.raises(ConfigError, match="at least 2"):
        quality.feature_metric_for_search(glyphs[:1], glyphs[4:8], "kid")


def test_paired_metrics_reference_values():
    real = torch.zeros(2, 3, 8, 8)
    fake = real.clone()
    fake[1] += 0.2  # 0.1 on the [0, 1] scale: MSE 0.01 → 20 dB
    assert paired.l1(fake, real).tolist() == pytest.approx([0.0, 0.2])
    assert float(paired.psnr(fake, real)[1]) == pytest.approx(20.0, abs=1e-4)
    assert float(paired.ssim(real + 0.5, real + 0.5)[0]) == pytest.approx(1.0, abs=1e-5)
    rng = np.random.default_rng(0)
    noisy = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16, 16))).float()
    assert float(paired.ssim(noisy, torch.zeros(2, 3, 16, 16)).mean()) < 0.5
    with pytest.raises(ValueError, match="one shape"):
        paired.psnr(fake[:1], real)


def test_search_miou_with_labels_and_a_segmenter():
    labels = torch.zeros(4, 3, 8, 8)  # two classes + an instance edge channel
    labels[:, 0, :, :4] = 1
    labels[:, 1, :, 4:] = 1
    labels[:, 2, :, 3:5] = 1
    fakes = (labels[:, 1:2] * 2 - 1).expand(-1, 3, -1, -1)

    class Threshold(torch.nn.Module):
        def forward(self, images):
            white = images.mean(1, keepdim=True)
            return torch.cat([-white, white], 1)

    assert quality.feature_metric_for_search(fakes, None, "miou", labels=labels, segmenter=Threshold()) == 1.0
    half = fakes.clone()
    half[:, :, :4, :] = -1  # the top half of class 1 drawn as class 0
    # class 0: 32 true of 48 predicted → 2/3; class 1: 16 of 32 → 1/2
    value = quality.feature_metric_for_search(
        list(half.split(2)), None, "miou", labels=list(labels.split(2)), segmenter=Threshold()
    )
    assert value == pytest.approx((2 / 3 + 1 / 2) / 2)
