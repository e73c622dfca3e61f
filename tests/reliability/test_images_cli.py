"""Image files through the command line: pixel values by their type's range, EXIF orientation, bombs.

B9: a 16-bit PNG, a 32-bit integer TIFF and a float TIFF in [0, 0.5] are read as the 8-bit images
they stand for (not stretched by their own maximum): ``evaluate identity`` against the 8-bit copies
finds L1 = 0. A photo stored rotated with an EXIF orientation is read upright. A PNG whose header
claims 20000x20000 pixels (a few hundred bytes) is refused before decoding, naming the file, and
skipped by a dataset built with ``on_error="skip"``; a float image holding NaN is named.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.cli import main
from gancompress.data import TransformConfig, build_dataset
from gancompress.data.images import load_rgb

SIZE = 32


def upright(seed: int) -> np.ndarray:
    """An asymmetric 8-bit gray image (a rotation or a rescale changes it)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 120, SIZE)[None, :].repeat(SIZE, 0)
    return np.clip(ramp + rng.integers(0, 60, (SIZE, SIZE)), 0, 255).astype(np.uint8)


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid PNG header claiming ``side`` x ``side`` RGB pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def write_pairs(root: Path) -> Path:
    """test/A holds the wide-range and rotated files, test/B their 8-bit upright equivalents."""
    a, b = root / "test" / "A", root / "test" / "B"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(upright(i)).save(b / f"{i}.png")
    # 16-bit PNG: 8-bit values on the 16-bit scale (v * 257); its maximum is far below 65535
    Image.fromarray(upright(0).astype(np.uint16) * 257).save(a / "0.png")
    # 32-bit signed TIFF: v * (2**31 - 1) / 255
    Image.fromarray(np.round(upright(1) / 255.0 * (2**31 - 1)).astype(np.int32), "I").save(a / "1.tif")
    # float TIFF in [0, 1]; this image's maximum is 180/255
    Image.fromarray((upright(2) / 255.0).astype(np.float32), "F").save(a / "2.tif")
    # stored rotated a quarter turn, with the EXIF orientation (6) that turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright(3)).copy()).save(a / "3.png", exif=exif)
    return root


def evaluate(root: Path, capsys) -> tuple[int, dict | str]:
    argv = ["evaluate", "identity", "--data", str(root), "--extractors", "domain", "--size", str(SIZE)]
    code = main([*argv, "--json", "--no-cache"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out) if code == 0 else out.err


def test_wide_range_and_rotated_images_are_read_as_the_8_bit_images_they_stand_for(tmp_path, capsys):
    code, result = evaluate(write_pairs(tmp_path / "data"), capsys)
    assert code == 0
    assert result["num_images"] == 4 and result["paired"]["l1"] == 0.0, result["paired"]


def test_float_image_with_nan_is_named(tmp_path, capsys):
    root = write_pairs(tmp_path / "data")
    bad = (upright(2) / 255.0).astype(np.float32)
    bad[3, 3] = np.nan
    Image.fromarray(bad, "F").save(root / "test" / "A" / "2.tif")
    code, err = evaluate(root, capsys)
    assert code == 2 and "2.tif holds NaN or infinite pixels" in err


def test_decompression_bomb_is_refused_naming_the_file_and_skipped_on_request(tmp_path, capsys):
    root = write_pairs(tmp_path / "data")
    bomb = bomb_png(root / "test" / "A" / "4.png")
    Image.fromarray(upright(4)).save(root / "test" / "B" / "4.png")
    code, err = evaluate(root, capsys)
    assert code == 2 and f"{bomb} is 20000x20000" in err and "decompression bomb" in err

    tf = TransformConfig.for_eval(SIZE)
    with pytest.warns(RuntimeWarning, match="skipping unreadable image.*4.png is 20000x20000"):
        data = build_dataset(root, "paired_folders", "test", tf, on_error="skip")
        items = [data[i] for i in range(len(data))]
    assert all(torch.isfinite(item["A"]).all() for item in items)


def test_the_pixel_limit_can_be_lowered(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    Image.fromarray(upright(0)).save(path)
    monkeypatch.setenv("GANCOMPRESS_MAX_IMAGE_PIXELS", str(SIZE * SIZE - 1))
    with pytest.raises(Exception, match=f"{path} is 32x32"):
        load_rgb(path)
    monkeypatch.setenv("GANCOMPRESS_MAX_IMAGE_PIXELS", str(SIZE * SIZE))
    assert load_rgb(path).size == (SIZE, SIZE)
