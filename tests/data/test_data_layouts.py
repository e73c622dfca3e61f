import random

import numpy as np
import pytest
import torch

from gancompress.data import (
    AlignedDataset,
    PairedFolderDataset,
    SemanticDataset,
    TransformConfig,
    UnpairedDataset,
    build_dataset,
    detect_kind,
    load_rgb,
)
from gancompress.data.semantic import instance_edges
from gancompress.errors import ConfigError, DataError
from imagefiles import random_rgb, save

TRAIN = TransformConfig(load_size=40, crop_size=32, preprocess="resize_and_crop", flip=True)


def make_aligned(root, rng, n=3, same_halves=False, size=32):
    for i in range(n):
        a = random_rgb(rng, size, size)
        b = a if same_halves else random_rgb(rng, size, size)
        save(root / "train" / f"{i:03d}.png", np.concatenate([a, b], axis=1))
    return root


def test_aligned_same_crop_and_flip_on_both_halves(tmp_path, rng):
    root = make_aligned(tmp_path, rng, n=2, same_halves=True)
    ds = AlignedDataset(root, "train", TRAIN)
    for seed in range(12):
        random.seed(seed)
        item = ds[0]
        assert item["A"].shape == (3, 32, 32)
        assert torch.equal(item["A"], item["B"]), "A and B got different random crops or flips"
    # The transform really is random (otherwise the equality above proves nothing).
    random.seed(0)
    first = ds[0]["A"]
    assert any(not torch.equal(first, ds[0]["A"]) for _ in range(10))


def test_aligned_halves_and_direction(tmp_path, rng):
    a = np.zeros((32, 32, 3), np.uint8)
    b = np.full((32, 32, 3), 255, np.uint8)
    save(tmp_path / "test" / "x.png", np.concatenate([a, b], axis=1))
    item = AlignedDataset(tmp_path, "test", TransformConfig.for_eval(32))[0]
    assert item["A"].min() == -1 and item["B"].max() == 1
    swapped = AlignedDataset(tmp_path, "test", TransformConfig.for_eval(32), direction="BtoA")[0]
    assert torch.equal(swapped["A"], item["B"]) and torch.equal(swapped["B"], item["A"])
    with pytest.raises(DataError, match="direction"):
        AlignedDataset(tmp_path, "test", direction="AtoC")


@pytest.mark.parametrize("layout", ["split_first", "domain_first"])
def test_paired_folders_match_by_name(tmp_path, rng, layout):
    for name in ("a", "b", "c"):
        img = random_rgb(rng)
        for dom in ("A", "B"):
            folder = tmp_path / "train" / dom if layout == "split_first" else tmp_path / dom / "train"
            save(folder / f"{name}.png", img)
    ds = build_dataset(tmp_path, "auto", "train", TRAIN)
    assert isinstance(ds, PairedFolderDataset) and len(ds) == 3
    random.seed(1)
    item = ds[1]
    assert torch.equal(item["A"], item["B"])
    assert item["A_path"].endswith("b.png") and item["B_path"].endswith("b.png")


def test_paired_folders_mismatch_names_the_files(tmp_path, rng):
    save(tmp_path / "train" / "A" / "one.png", random_rgb(rng))
    save(tmp_path / "train" / "B" / "two.png", random_rgb(rng))
    with pytest.raises(DataError, match="one"):
        PairedFolderDataset(tmp_path, "train")


def test_unpaired_layout_and_direction(tmp_path, rng):
    for i in range(3):
        save(tmp_path / "trainA" / f"a{i}.png", random_rgb(rng))
    for i in range(5):
        save(tmp_path / "trainB" / f"b{i}.png", random_rgb(rng))
    assert detect_kind(tmp_path) == "unpaired"
    ds = build_dataset(tmp_path, "unpaired", "train", TRAIN)
    assert isinstance(ds, UnpairedDataset) and len(ds) == 5
    item = ds[4]
    assert "trainA" in item["A_path"] and "trainB" in item["B_path"]
    rev = UnpairedDataset(tmp_path, "train", TRAIN, direction="BtoA", serial=True)
    assert "trainB" in rev[0]["A_path"] and "trainA" in rev[0]["B_path"]


def test_mixed_sizes_resized_to_load_size(tmp_path, rng):
    for i, (h, w) in enumerate([(20, 30), (50, 44), (33, 33)]):
        save(tmp_path / "testA" / f"{i}.png", random_rgb(rng, h, w))
        save(tmp_path / "testB" / f"{i}.png", random_rgb(rng, h, w))
    ds = UnpairedDataset(tmp_path, "test", TransformConfig.for_eval(24), serial=True)
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    assert batch["A"].shape == (3, 3, 24, 24)


def test_mode_conversion_grayscale_palette_rgba(tmp_path):
    gray = np.full((8, 8), 100, np.uint8)
    save(tmp_path / "g.png", gray, "L")
    pal = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(np.full((8, 8, 3), (10, 200, 30), np.uint8)).convert("P", palette=Image.ADAPTIVE).save(
        pal
    )
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half fully transparent
    save(tmp_path / "a.png", rgba, "RGBA")
    g = np.asarray(load_rgb(tmp_path / "g.png"))
    assert g.shape == (8, 8, 3) and (g == 100).all()
    p = np.asarray(load_rgb(pal))
    assert p.shape == (8, 8, 3) and tuple(p[0, 0]) == (10, 200, 30)
    a = np.asarray(load_rgb(tmp_path / "a.png"))
    assert tuple(a[0, 0]) == (255, 0, 0) and tuple(a[7, 7]) == (255, 255, 255)


def test_16bit_grayscale_is_scaled(tmp_path):
    from PIL import Image

    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 0
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = np.asarray(load_rgb(tmp_path / "d.png"))
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_unreadable_image_error_names_file(tmp_path, rng):
    make_aligned(tmp_path, rng, n=2)
    bad = tmp_path / "train" / "001.png"
    bad.write_bytes(b"not a png at all")
    ds = AlignedDataset(tmp_path, "train", TRAIN)
    ds[0]
    with pytest.raises(DataError, match="001.png"):
        ds[1]


def test_unreadable_image_skip_warns_and_moves_on(tmp_path, rng):
    make_aligned(tmp_path, rng, n=3)
    bad = tmp_path / "train" / "001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = AlignedDataset(tmp_path, "train", TRAIN, on_error="skip")
    with pytest.warns(RuntimeWarning, match="001.png"):
        item = ds[1]
    assert item["A_path"].endswith("002.png")
    assert str(bad) in ds.policy.bad


def test_all_unreadable_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.png").write_bytes(b"junk")
    ds = AlignedDataset(tmp_path, "train", on_error="skip")
    with pytest.warns(RuntimeWarning), pytest.raises(DataError, match="every image"):
        ds[0]


def test_missing_and_empty_folders_name_the_path(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        build_dataset(tmp_path / "nope", "paired")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"contains no images"):
        build_dataset(tmp_path, "aligned", "train")
    with pytest.raises(DataError, match="trainA"):
        build_dataset(tmp_path, "unpaired", "train")
    with pytest.raises(DataError, match="cannot tell the layout"):
        build_dataset(tmp_path, "auto", "val")


def test_transform_config_validation():
    with pytest.raises(ConfigError, match="preprocess"):
        TransformConfig(preprocess="zoom")
    with pytest.raises(ConfigError, match="crop_size"):
        TransformConfig(load_size=32, crop_size=64)


def test_crop_mode_too_small_names_the_file(tmp_path, rng):
    save(tmp_path / "trainA" / "small.png", random_rgb(rng, 16, 16))
    save(tmp_path / "trainB" / "small.png", random_rgb(rng, 16, 16))
    ds = UnpairedDataset(tmp_path, "train", TransformConfig(crop_size=32, load_size=32, preprocess="crop"))
    with pytest.raises(DataError, match="small.png"):
        ds[0]


def test_none_and_scale_width_modes(tmp_path, rng):
    save(tmp_path / "testA" / "x.png", random_rgb(rng, 30, 50))
    save(tmp_path / "testB" / "x.png", random_rgb(rng, 30, 50))
    none = UnpairedDataset(tmp_path, "test", TransformConfig(preprocess="none", flip=False), serial=True)[0]
    assert none["A"].shape == (3, 28, 48)
    sw = TransformConfig(load_size=40, crop_size=16, preprocess="scale_width", flip=False)
    assert UnpairedDataset(tmp_path, "test", sw, serial=True)[0]["A"].shape == (3, 24, 40)


def make_semantic(root, rng, with_inst=True, n=2):
    for i in range(n):
        label = np.zeros((32, 32), np.uint8)
        label[:, 16:] = 2
        label[:8, :8] = 1
        save(root / "train_label" / f"{i}.png", label, "L")
        save(root / "train_img" / f"{i}.jpg", random_rgb(rng))
        if with_inst:
            inst = np.zeros((32, 32), np.uint8)
            inst[:, 20:] = 7
            save(root / "train_inst" / f"{i}.png", inst, "L")
    return root


def test_semantic_one_hot_with_instance_edges(tmp_path, rng):
    root = make_semantic(tmp_path, rng)
    ds = build_dataset(root, "semantic", "train", TransformConfig.for_eval(32), num_classes=3)
    assert isinstance(ds, SemanticDataset) and ds.label_channels == 4
    item = ds[0]
    label = item["label"]
    assert label.shape == (4, 32, 32) and item["image"].shape == (3, 32, 32)
    assert torch.equal(label[:3].sum(0), torch.ones(32, 32)), "one-hot must sum to 1 per pixel"
    assert label[1, 0, 0] == 1 and label[2, 0, 31] == 1 and label[0, 31, 0] == 1
    edges = label[3]
    assert edges[:, 19:21].sum() == 64 and edges.sum() == 64, "edges only at the instance boundary"


def test_semantic_same_crop_flip_for_label_and_image(tmp_path, rng):
    # The photo encodes the label (class k → grey 100*k) so any misalignment shows.
    for i in range(2):
        label = rng.integers(0, 3, size=(32, 32)).astype(np.uint8)
        save(tmp_path / "train_label" / f"{i}.png", label, "L")
        save(tmp_path / "train_img" / f"{i}.png", np.repeat((label * 100)[..., None], 3, axis=2))
    cfg = TransformConfig(load_size=32, crop_size=24, preprocess="crop", flip=True)
    ds = SemanticDataset(tmp_path, "train", cfg, num_classes=3)
    for seed in range(6):
        random.seed(seed)
        item = ds[seed % 2]
        cls = item["label"].argmax(0).float()
        expected = cls * 100 / 127.5 - 1
        assert torch.allclose(item["image"][0], expected, atol=1e-5)


def test_semantic_bad_label_id_and_dontcare(tmp_path, rng):
    make_semantic(tmp_path, rng, with_inst=False, n=1)
    ds = SemanticDataset(tmp_path, "train", TransformConfig.for_eval(32), num_classes=2)
    with pytest.raises(DataError, match="0.png"):
        ds[0]
    label = np.full((32, 32), 255, np.uint8)
    label[0, 0] = 0
    save(tmp_path / "train_label" / "0.png", label, "L")
    ds = SemanticDataset(tmp_path, "train", TransformConfig.for_eval(32), num_classes=2, dontcare_label=True)
    assert ds[0]["label"].shape == (3, 32, 32) and ds[0]["label"][2].sum() == 32 * 32 - 1


def test_semantic_missing_photo_is_named(tmp_path, rng):
    make_semantic(tmp_path, rng, with_inst=False, n=2)
    (tmp_path / "train_img" / "1.jpg").unlink()
    with pytest.raises(DataError, match="1.png"):
        SemanticDataset(tmp_path, "train", num_classes=3)


def test_instance_edges_function():
    inst = torch.tensor([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    edges = instance_edges(inst)[0]
    assert edges[0, 0] == 0 and edges[0, 1] == 1 and edges[0, 2] == 1 and edges[2, 0] == 1
