"""``evaluate_generator`` and ``gancompress evaluate`` end to end on tiny datasets made here."""

import json

import numpy as np
import pytest
import torch
from helpers_metrics import Identity, MeanPool, write_domain_extractor
from PIL import Image

from gancompress.cli import main
from gancompress.data import build_font_dataset
from gancompress.data.fonts import TARGET_FONT
from gancompress.data.metadata import write_metadata
from gancompress.errors import CheckpointError
from gancompress.export.saved import save_generator
from gancompress.metrics.domain import load_domain_extractor
from gancompress.metrics.evaluate import evaluate_generator
from gancompress.metrics.segmentation import confusion_matrix, load_segmenter, mean_iou
from gancompress.models import create_generator


@pytest.fixture(scope="module")
def same_fonts(tmp_path_factory):
    """Paired glyphs whose A and B are the same face: the identity is the perfect generator."""
    root = tmp_path_factory.mktemp("same") / "fonts"
    return build_font_dataset(root, size=64, source=TARGET_FONT, target=TARGET_FONT, max_chars=24, seed=1)


@pytest.fixture(scope="module")
def fonts(tmp_path_factory):
    return build_font_dataset(tmp_path_factory.mktemp("fonts") / "fonts", size=32, max_chars=24, seed=1)


def test_identity_on_identical_pairs_is_perfect(same_fonts, tmp_path):
    r = evaluate_generator(Identity(), same_fonts, extractors=(MeanPool(),), stats_dir=tmp_path)
    assert r["num_images"] == 5 and r["kind"] == "paired" and r["dataset"] == "fonts"
    assert r["paired"]["l1"] == 0.0 and r["paired"]["ssim"] == pytest.approx(1.0, abs=1e-5)
    entry = r["extractors"]["meanpool"]
    assert entry["extractor"] == "meanpool" and entry["comparable_with_published_fid"] is False
    assert abs(entry["fid"]) < 1e-6 and entry["num_real"] == entry["num_fake"] == 5


def test_worse_generator_scores_worse(fonts, tmp_path):
    good = evaluate_generator(Identity(), fonts, extractors=(MeanPool(),), stats_dir=tmp_path)

    class Blank(torch.nn.Module):
        def forward(self, x):
            return torch.ones_like(x)  # white pages

    bad = evaluate_generator(Blank(), fonts, extractors=(MeanPool(),), stats_dir=tmp_path)
    assert bad["extractors"]["meanpool"]["fid"] > good["extractors"]["meanpool"]["fid"]
    assert bad["extractors"]["meanpool"]["real_stats_cached"] is True  # the second run reused them
    assert bad["paired"]["psnr"] != good["paired"]["psnr"]


def test_shipped_fonts_extractor_reads_real_glyphs(same_fonts, tmp_path):
    r = evaluate_generator(Identity(), same_fonts, extractors=("domain",), stats_dir=tmp_path)
    entry = r["extractors"]["domain"]
    known = set(load_domain_extractor("fonts").classes)
    in_classes = [p for p in (same_fonts / "test").iterdir() if int(p.stem[2:], 16) in known]
    assert entry["extractor"] == "domain/fonts" and entry["content_images"] == len(in_classes) > 0
    assert entry["content_accuracy"] >= 0.8  # real target-face glyphs of characters it was given
    assert abs(entry["fid"]) < 1e-3  # 5 images in 128 dimensions: sqrtm of a singular product


def test_unpaired_content_class_follows_direction(tmp_path):
    root = tmp_path / "unpaired"
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / folder / f"{i}.png"
            )
    write_metadata(root, {"name": "toy", "kind": "unpaired", "size": 16, "domains": {"A": "a", "B": "c"}})
    ext = write_domain_extractor(tmp_path / "ext", confident_class=2)  # always says "c"
    spec = f"domain:{ext}"
    forward = evaluate_generator(Identity(), root, kind="unpaired", extractors=(spec,), stats_dir=tmp_path)
    backward = evaluate_generator(
        Identity(), root, kind="unpaired", direction="BtoA", extractors=(spec,), stats_dir=tmp_path
    )
    assert forward["extractors"][spec]["content_accuracy"] == 1.0  # B is class "c"
    assert backward["extractors"][spec]["content_accuracy"] == 0.0  # generating A ("a")
    assert forward["real_splits"] == ["train", "test"] and forward["extractors"][spec]["num_real"] == 8


def test_semantic_miou_with_a_given_segmenter(tmp_path):
    root = tmp_path / "sem"
    rng = np.random.default_rng(1)
    for split in ("test",):
        (root / f"{split}_label").mkdir(parents=True)
        (root / f"{split}_img").mkdir(parents=True)
        for i in range(3):
            label = np.zeros((16, 16), np.uint8)
            label[:, 8:] = 1
            Image.fromarray(label).save(root / f"{split}_label" / f"{i}.png")
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / f"{split}_img" / f"{i}.png"
            )
    write_metadata(root, {"name": "toy-sem", "kind": "semantic", "size": 16, "num_classes": 2})

    class LabelToImage(torch.nn.Module):
        def forward(self, label):  # class 1 → white, class 0 → black
            return (label[:, 1:2] * 2 - 1).expand(-1, 3, -1, -1)

    class Threshold(torch.nn.Module):
        name = "threshold"

        def forward(self, images):
            white = images.mean(1, keepdim=True)
            return torch.cat([-white, white], 1)

    r = evaluate_generator(
        LabelToImage(),
        root,
        kind="semantic",
        extractors=(MeanPool(),),
        segmenter=Threshold(),
        stats_dir=tmp_path,
    )
    assert r["segmentation"]["miou"] == 1.0 and r["segmentation"]["segmenter"] == "threshold"
    auto = evaluate_generator(
        LabelToImage(), root, kind="semantic", extractors=(MeanPool(),), stats_dir=tmp_path
    )
    assert "no shipped segmenter" in auto["skipped"]["segmenter"]


def test_miou_from_confusion():
    pred = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    target = torch.tensor([[0, 0, 1, 2], [2, 2, 2, 2]])
    conf = confusion_matrix(pred, target, 3)
    miou, per_class = mean_iou(conf)
    # class 0: tp 2, fp 1 → 2/3; class 1: tp 1, fp 1 → 1/2; class 2: tp 3, fn 2 → 3/5
    assert per_class == pytest.approx([2 / 3, 1 / 2, 3 / 5]) and miou == pytest.approx(
        (2 / 3 + 1 / 2 + 3 / 5) / 3
    )


def test_missing_inception_is_skipped_with_the_file_name(fonts, tmp_path, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.warns(RuntimeWarning, match="pt_inception-2015-12-05-6726825d.pth"):
        r = evaluate_generator(Identity(), fonts, extractors=("inception", MeanPool()), stats_dir=tmp_path)
    assert "pt_inception-2015-12-05-6726825d.pth not found" in r["skipped"]["inception"]
    assert "meanpool" in r["extractors"]


def test_evaluate_command_json_and_text(fonts, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    g = create_generator("resnet", base_width=4)
    save_generator(g, tmp_path / "g")
    assert (
        main(["evaluate", str(tmp_path / "g"), "--data", str(fonts), "--extractors", "domain", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out["paired"]) == {"psnr", "ssim", "l1"} and out["num_images"] == 5
    entry = out["extractors"]["domain"]
    assert entry["extractor"] == "domain/fonts" and 0.0 <= entry["content_accuracy"] <= 1.0
    assert np.isfinite(entry["fid"]) and np.isfinite(entry["kid"])
    with pytest.warns(RuntimeWarning, match="extractor 'inception' skipped"):
        code = main(
            ["evaluate", str(tmp_path / "g"), "--data", str(fonts), "--extractors", "domain,inception"]
        )
    assert code == 0
    text = capsys.readouterr().out
    assert "[domain/fonts] FID" in text and "content accuracy" in text and "[inception] skipped" in text
    assert "not comparable with published FIDs" in text


def test_evaluate_command_errors_name_the_path(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing"), "--data", str(tmp_path)]) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err


def test_identity_baseline_on_the_builtin_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    assert main(["evaluate", "identity", "--data", "builtin:fonts", "--extractors", "domain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "fonts" and out["image_size"] == 64 and out["num_images"] == 96
    entry = out["extractors"]["domain"]
    # The untranslated source glyphs: the right characters (content kept) in the wrong face (FID > 0).
    assert entry["content_accuracy"] >= 0.9 and entry["fid"] > 1.0


def test_unpaired_test_sets_of_different_sizes(tmp_path):
    root = tmp_path / "uneven"
    rng = np.random.default_rng(2)
    for folder, count in (("trainA", 3), ("trainB", 3), ("testA", 4), ("testB", 3)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / folder / f"{i}.png"
            )
    r = evaluate_generator(
        Identity(), root, kind="unpaired", image_size=16, extractors=(MeanPool(),), stats_dir=tmp_path
    )
    assert r["num_images"] == 4 and "paired" not in r  # names no longer line up: no paired metrics
    assert r["extractors"]["meanpool"]["num_real"] == 6


def test_labels2sat_gets_its_shipped_segmenter(tmp_path):
    seg = load_segmenter("labels2sat")
    assert seg.info["kind"] == "segmenter" and 0.0 < seg.info["accuracy"]["heldout_miou"] <= 1.0
    with torch.no_grad():
        assert seg(torch.zeros(2, 3, 40, 40)).shape == (2, 7, 40, 40)  # logits at the input's size
    root = tmp_path / "l2s"
    (root / "test_label").mkdir(parents=True)
    (root / "test_img").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "test_label" / f"{i}.png")  # all ocean
        Image.fromarray(np.full((32, 32, 3), (10, 20, 60), np.uint8)).save(root / "test_img" / f"{i}.png")
    write_metadata(root, {"name": "labels2sat", "kind": "semantic", "size": 32, "num_classes": 7})

    class DeepBlue(torch.nn.Module):
        def forward(self, label):
            return (
                torch.tensor([-0.92, -0.84, -0.53])
                .view(1, 3, 1, 1)
                .expand(label.shape[0], 3, *label.shape[2:])
            )

    r = evaluate_generator(DeepBlue(), root, kind="semantic", extractors=(MeanPool(),), stats_dir=tmp_path)
    assert r["segmentation"]["segmenter"] == "segmenter/labels2sat"
    assert r["segmentation"]["miou"] == 1.0  # deep blue reads as ocean everywhere
    assert (
        r["segmentation"]["per_class_iou"][0] == 1.0 and r["segmentation"]["per_class_iou"][1:] == [None] * 6
    )
    with pytest.raises(CheckpointError, match="no segmenter 'cityscapes'.*labels2sat"):
        load_segmenter("cityscapes")


def test_evaluate_json_is_strict_when_psnr_is_infinite(same_fonts, tmp_path, capsys, monkeypatch):
    """Identical images have PSNR +inf: the JSON output says null, which every JSON parser reads."""
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    assert main(["evaluate", "identity", "--data", str(same_fonts), "--extractors", "domain", "--json"]) == 0
    text = capsys.readouterr().out
    out = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert out["paired"]["psnr"] is None and out["paired"]["l1"] == 0.0


def _tiny_maps(root, n=12, size=32):
    """Paired relief | satellite tiles as ``data prepare maps`` lays them out: random blocky land on
    sea, light blue / tan in A, deep blue / green in B (so one colour rule translates A to B)."""
    rng = np.random.default_rng(0)
    relief = {0: (120, 170, 220), 1: (200, 180, 120)}
    satellite = {0: (10, 20, 60), 1: (40, 80, 30)}
    for i in range(n):
        land = np.kron(rng.random((4, 4)) < 0.5, np.ones((size // 4, size // 4), bool)).astype(int)
        a = np.stack([np.choose(land, [relief[0][c], relief[1][c]]) for c in range(3)], -1)
        b = np.stack([np.choose(land, [satellite[0][c], satellite[1][c]]) for c in range(3)], -1)
        (root / "test").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate([a, b], 1).astype(np.uint8)).save(root / "test" / f"{i}.png")
    write_metadata(root, {"name": "maps", "kind": "paired", "size": size,
                          "domains": {"A": "ETOPO colour relief map", "B": "Blue Marble satellite"}})  # fmt: skip
    return root


class ReliefToSatellite(torch.nn.Module):
    """The tiny maps' exact A → B colour rule (sea where blue exceeds red)."""

    def forward(self, x):
        sea = (x[:, 2:3] > x[:, 0:1]).float()
        deep = torch.tensor([10, 20, 60]).view(1, 3, 1, 1) / 127.5 - 1
        green = torch.tensor([40, 80, 30]).view(1, 3, 1, 1) / 127.5 - 1
        return sea * deep + (1 - sea) * green


def test_maps_domain_fid_is_the_satellite_segmenters_feature_space(tmp_path):
    root = _tiny_maps(tmp_path / "maps")
    exact = evaluate_generator(ReliefToSatellite(), root, extractors=("domain",), stats_dir=tmp_path)
    entry = exact["extractors"]["domain"]
    assert entry["extractor"] == "segmenter/labels2sat/encoder-gap" and entry["num_real"] == 12
    copy = evaluate_generator(Identity(), root, extractors=("domain",), stats_dir=tmp_path)
    # drawing the right satellite colours is near the real tiles; copying the relief map is far off
    assert abs(entry["fid"]) < 1e-3 and copy["extractors"]["domain"]["fid"] > 10.0  # 46 measured
    assert "content_accuracy" not in entry  # no per-image classes: no content accuracy
    # it saw satellite tiles only: generating maps' domain A has no domain extractor
    with pytest.warns(RuntimeWarning, match="domain A of dataset maps"):
        back = evaluate_generator(
            Identity(), root, direction="BtoA", extractors=("domain",), stats_dir=tmp_path
        )
    assert back["extractors"] == {}
    assert "domain A of dataset maps (ETOPO colour relief map)" in back["skipped"]["domain"]


def test_segmenter_features_are_its_pooled_encoder_stages():
    from gancompress.metrics.extractors import create_extractor

    feats = create_extractor("segmenter:labels2sat")
    seg = load_segmenter("labels2sat").model
    x = torch.rand(3, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        got = feats(x)
        stages = seg.encode(x)
    assert got.shape == (3, feats.num_features) and feats.num_features == 16 + 32 + 64 + 96
    assert torch.allclose(got[:, -96:], stages[-1].mean(dim=(2, 3)))
    assert [s.shape[-1] for s in stages] == [128, 64, 32, 16]  # resized to the segmenter's own 128 px
