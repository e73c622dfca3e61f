"""An int8 mobile bundle is held to the int8 fidelity threshold, as the ONNX int8 graph is."""

from __future__ import annotations

import argparse

import pytest

from gancompress.export.commands import _gate_mobile_int8
from gancompress.export.int8 import Int8QualityError


def bundle(tmp_path, name="executorch-int8"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.pte").write_bytes(b"x")
    return folder


def args(allow_lossy=False):
    return argparse.Namespace(min_int8_psnr=30.0, allow_lossy=allow_lossy)


def meta(psnr, dtype="int8"):
    return {"dtype": dtype, "model": "model.pte", "verification": {"psnr_db_min": psnr, "images": 4}}


def test_a_lossy_int8_bundle_fails_and_is_kept_under_a_name_that_says_so(tmp_path):
    folder = bundle(tmp_path)
    with pytest.raises(Int8QualityError, match=r"7\.30 dB.*below 30 dB"):
        _gate_mobile_int8(args(), folder, "executorch-int8", meta(7.3))
    assert not folder.exists() and (tmp_path / "executorch-int8.lossy" / "model.pte").exists()


def test_a_faithful_or_accepted_bundle_and_fp32_bundles_are_left_alone(tmp_path):
    folder = bundle(tmp_path)
    _gate_mobile_int8(args(), folder, "executorch-int8", meta(31.0))
    _gate_mobile_int8(args(allow_lossy=True), folder, "executorch-int8", meta(7.3))
    _gate_mobile_int8(args(), folder, "executorch", meta(7.3, dtype="float32"))
    assert (folder / "model.pte").exists()


def test_an_unverified_int8_bundle_is_named_as_unchecked(tmp_path, capsys):
    folder = bundle(tmp_path)
    m = {"dtype": "int8", "model": "model.pte", "verification": "not checked"}
    _gate_mobile_int8(args(), folder, "executorch-int8", m)
    assert "not checked on real images" in capsys.readouterr().err
