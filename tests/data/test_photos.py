"""``gancompress data prepare photos`` on a small fake folder of photos (no Debian package needed)."""

import numpy as np
import pytest
from PIL import Image

from gancompress.cli import main
from gancompress.data import build_dataset, read_metadata
from gancompress.data.prepare import PREPARERS, photos
from gancompress.data.transforms import TransformConfig
from gancompress.errors import DataError


def fake_photos(folder, count=6, size=(80, 60)):
    """Colourful smooth images with texture (photo-like enough for the filters), plus a grey one."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]] / max(size)
    for i in range(count):
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), np.sin(4 * (xx + yy) + 2 * i)], -1)
        img = (127 + 90 * base + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"photo{i}.jpg", quality=95)
    Image.fromarray(np.full((size[1], size[0]), 128, np.uint8)).save(folder / "grey.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folder / "tiny.png")
    return folder


@pytest.mark.parametrize("task", photos.TASKS)
def test_photos_split_by_source_and_paired(tmp_path, task):
    src = fake_photos(tmp_path / "src")
    out = photos.build_photos(
        tmp_path / task,
        size=32,
        task=task,
        source=str(src),
        crops_per_photo=3,
        min_side=40,
        test_fraction=0.34,
    )
    info = read_metadata(out)
    assert info["kind"] == "paired" and info["task"] == task and info["size"] == 32
    assert info["counts"] == {"train": 4 * 3, "test": 2 * 3}
    assert set(info["skipped"]) == {str(src / "grey.png"), str(src / "tiny.png")}
    scenes = {
        split: {p.stem.rsplit("_", 2)[0] for p in (out / split).iterdir()} for split in ("train", "test")
    }
    assert scenes["train"] and scenes["test"] and not scenes["train"] & scenes["test"]
    for name, entry in info["scenes"].items():
        assert name in scenes[entry["split"]]
    ds = build_dataset(out, "auto", "test", TransformConfig.for_eval(32))
    sample = ds[0]
    a, b = sample["A"], sample["B"]
    assert a.shape == b.shape == (3, 32, 32)
    assert not np.allclose(a, b)
    if task == "colorize":
        assert np.allclose(a[0], a[1]) and np.allclose(a[1], a[2])  # grey input
        assert not np.allclose(b[0], b[1])


def test_tone_filter_is_a_warm_contrast_look():
    rng = np.random.default_rng(1)
    img = rng.integers(40, 215, (32, 32, 3), dtype=np.uint8)
    out = photos.tone_filter(img).astype(float)
    assert out.shape == img.shape
    assert (out[..., 0] - out[..., 2]).mean() > (img[..., 0].astype(float) - img[..., 2]).mean() + 5  # warmer
    np.testing.assert_array_equal(photos.tone_filter(img), photos.tone_filter(img))  # deterministic


def test_same_scene_pairs_share_a_split():
    from pathlib import Path

    assert photos.scene_of(Path("data/aloeR.jpg")) == photos.scene_of(Path("data/aloeL.jpg"))
    assert photos.scene_of(Path("text/scenetext02.jpg")) != photos.scene_of(Path("text/scenetext03.jpg"))


def test_photos_errors_and_cli(tmp_path, capsys):
    assert "photos" in PREPARERS
    with pytest.raises(DataError, match="task must be one of"):
        photos.build_photos(tmp_path / "x", task="sepia", source=str(tmp_path))
    one = fake_photos(tmp_path / "one", count=1)
    with pytest.raises(DataError, match="at least 2"):
        photos.build_photos(tmp_path / "y", source=str(one), min_side=40)
    with pytest.raises(DataError, match="no such file or folder"):
        photos.build_photos(tmp_path / "z", source=str(tmp_path / "missing"))
    src = fake_photos(tmp_path / "src")
    args = ["data", "prepare", "photos", "--out", str(tmp_path / "cli"), "--set", f"source={src}"]
    args += ["--set", "size=32", "--set", "min_side=40", "--set", "crops_per_photo=1"]
    assert main(args) == 0
    assert "photos:" in capsys.readouterr().out
    assert sum(read_metadata(tmp_path / "cli")["counts"].values()) == 6
