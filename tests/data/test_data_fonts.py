import hashlib
import time

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.data import (
    TransformConfig,
    build_dataset,
    build_font_dataset,
    ensure_builtin_dataset,
    read_metadata,
)
from gancompress.data.fonts import codepoint_of, render_shared_glyphs
from gancompress.data.glyphs import mpl_font_dir, render_glyph
from gancompress.errors import DataError


def _tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_paired_split_is_by_character(tiny_fonts):
    train = {p.stem for p in (tiny_fonts / "train").glob("*.png")}
    test = {p.stem for p in (tiny_fonts / "test").glob("*.png")}
    assert len(train) + len(test) == 40 and test and train
    assert not train & test, "a character is in both train and test"
    info = read_metadata(tiny_fonts)
    assert info["counts"] == {"train": len(train), "test": len(test)}
    assert {f"U+{ord(c):04X}" for c in info["characters"]["test"]} == test


def test_build_is_deterministic_and_seed_matters(tmp_path, tiny_fonts):
    again = build_font_dataset(tmp_path / "again", size=32, max_chars=40, seed=3)
    assert _tree_digest(again) == _tree_digest(tiny_fonts)
    other = build_font_dataset(tmp_path / "other", size=32, max_chars=40, seed=4)
    assert _tree_digest(other) != _tree_digest(tiny_fonts)


def test_unpaired_variant(tiny_fonts_unpaired):
    names = {
        d: {p.stem for p in (tiny_fonts_unpaired / d).glob("*.png")}
        for d in ("trainA", "trainB", "testA", "testB")
    }
    assert not names["trainA"] & names["trainB"], "unpaired training halves must not share characters"
    assert names["testA"] == names["testB"]
    assert not (names["trainA"] | names["trainB"]) & names["testA"]
    ds = build_dataset(tiny_fonts_unpaired, "auto", "test", TransformConfig.for_eval(32), serial=True)
    item = ds[0]
    assert item["A"].shape == (3, 32, 32) and codepoint_of(item["A_path"]) == codepoint_of(item["B_path"])


def test_paired_images_hold_source_and_target(tiny_fonts):
    ds = build_dataset(tiny_fonts, "auto", "test", TransformConfig.for_eval(32))
    item = ds[0]
    a, b = item["A"], item["B"]
    # Black ink on white paper, and the two faces differ.
    assert a.max() == 1 and a.min() < -0.5 and b.min() < -0.5
    assert (a - b).abs().mean() > 0.02
    cp = codepoint_of(item["A_path"])
    ref = render_glyph(mpl_font_dir() / "DejaVuSans.ttf", chr(cp), 32)
    assert np.array_equal(((a[0] + 1) * 127.5).round().byte().numpy(), ref)


def test_blank_and_duplicate_glyphs_dropped():
    fd = mpl_font_dir()
    # Space and no-break space are blank; Latin A / Greek Alpha / Cyrillic A draw the same glyph.
    glyphs = render_shared_glyphs(
        fd / "DejaVuSans.ttf", fd / "DejaVuSerif.ttf", 32, [0x20, 0xA0, 0x41, 0x391, 0x410, 0x42]
    )
    assert glyphs.codepoints == (0x41, 0x42)
    assert glyphs.source.shape == (2, 32, 32)


def test_bad_size_and_nonempty_out(tmp_path, tiny_fonts):
    with pytest.raises(DataError, match="between"):
        build_font_dataset(tmp_path / "x", size=8)
    with pytest.raises(DataError, match="not empty"):
        build_font_dataset(tiny_fonts, size=32)


def test_ensure_builtin_dataset_builds_once_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    t0 = time.perf_counter()
    root = ensure_builtin_dataset("fonts", size=32)
    build_s = time.perf_counter() - t0
    assert root.parent == tmp_path / "cache" / "datasets"
    assert build_s < 20, f"the embedded dataset must build in seconds, took {build_s:.1f}s"
    info = read_metadata(root)
    assert info["counts"]["train"] > 250 and info["counts"]["test"] > 60
    stamp = (root / "gancompress_dataset.json").stat().st_mtime_ns
    assert ensure_builtin_dataset("fonts", size=32) == root
    assert (root / "gancompress_dataset.json").stat().st_mtime_ns == stamp, "rebuilt instead of reused"
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_ensure_builtin_unknown_name_points_to_prepare(tmp_path):
    with pytest.raises(DataError, match="data prepare fashion"):
        ensure_builtin_dataset("fashion", root=tmp_path)


# -- unlabelled inputs ----------------------------------------------------------------------------
def test_unlabelled_glyphs_are_source_glyphs_no_fonts_character_can_have(tmp_path):
    from gancompress.data.fonts import SOURCE_FONT, TARGET_FONT, build_unlabelled_glyphs
    from gancompress.data.glyphs import font_codepoints

    out = build_unlabelled_glyphs(tmp_path / "u", size=32)
    files = sorted(out.glob("*.png"))
    info = read_metadata(out)
    assert info["kind"] == "images" and info["counts"]["images"] == len(files) > 500
    fd = mpl_font_dir()
    target = font_codepoints(fd / TARGET_FONT)
    # the whole paired dataset at this size, train and test: none of its characters, none of its
    # source images (a Cyrillic letter that DejaVu draws exactly like a Latin one) is among them
    everything = render_shared_glyphs(fd / SOURCE_FONT, fd / TARGET_FONT, 32)
    digests = {hashlib.sha256(g.tobytes()).digest() for g in everything.source}
    seen = set()
    for path in files:
        cp = codepoint_of(path)
        assert cp not in target and cp not in everything.codepoints
        glyph = np.asarray(Image.open(path).convert("L"))
        assert np.array_equal(glyph, render_glyph(fd / SOURCE_FONT, chr(cp), 32))
        digest = hashlib.sha256(glyph.tobytes()).digest()
        assert digest not in digests and digest not in seen
        seen.add(digest)
    # Greek lunate capital sigma (U+03F9), which STIX lacks, is drawn exactly like Latin C: dropped,
    # while its neighbour U+03FA (San) is kept
    lunate = render_glyph(fd / SOURCE_FONT, "\u03f9", 32)
    assert 0x3F9 not in target and np.array_equal(lunate, render_glyph(fd / SOURCE_FONT, "C", 32))
    assert not (out / "U+03F9.png").exists() and (out / "U+03FA.png").exists()
    with pytest.raises(DataError, match="not empty"):
        build_unlabelled_glyphs(out, size=32)
    with pytest.raises(DataError, match="draws no character"):
        build_unlabelled_glyphs(tmp_path / "none", size=32, ranges=[[0x41, 0x5A]])


def test_with_unlabelled_draws_one_input_per_item_reproducibly_per_position(tmp_path, tiny_fonts):
    from gancompress.data.unlabelled import ImageFolderDataset, WithUnlabelled
    from gancompress.training.sampler import PositionedDataset

    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    tf = TransformConfig(load_size=32, crop_size=32, flip=False)
    labelled = build_dataset(tiny_fonts, "paired", "train", tf)
    ds = WithUnlabelled(labelled, ImageFolderDataset(folder, tf))
    assert len(ds) == len(labelled)
    read = PositionedDataset(ds, seed=5)
    first = read[(3, 17)]
    assert first["A_path"] == labelled[3]["A_path"] and first["U"].shape == (3, 32, 32)
    value = int(first["U_path"].split("/")[-1][0])
    assert torch.allclose(first["U"], torch.full_like(first["U"], 40 * value / 127.5 - 1))
    assert read[(3, 17)]["U_path"] == first["U_path"]  # the same position reads the same input
    assert len({read[(0, p)]["U_path"] for p in range(40)}) == 6  # and positions spread over all
    with pytest.raises(DataError, match="data.unlabelled: folder .* does not exist"):
        ImageFolderDataset(tmp_path / "missing", tf, what="data.unlabelled")
