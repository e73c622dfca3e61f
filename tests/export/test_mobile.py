"""Mobile exports (ExecuTorch + XNNPACK, ncnn, Core ML): each verified against PyTorch on real images.

Each runtime's tests skip cleanly when its optional package is not installed.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.errors import ConfigError
from gancompress.export.int8 import calibration_inputs
from gancompress.export.mobile import export_bundle, psnr_max_error
from gancompress.models import create_generator


def _tiny():
    g = create_generator("resnet", base_width=4, num_blocks=3).eval()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return g


@pytest.fixture(scope="module")
def real(fonts32):
    g = _tiny()
    return g, calibration_inputs(g, fonts32, count=4, size=32)


def test_psnr_max_error():
    a = torch.zeros(1, 3, 4, 4)
    assert psnr_max_error(a, a) == (float("inf"), 0.0)
    psnr, err = psnr_max_error(a, a + 0.02)
    assert err == pytest.approx(0.02) and psnr == pytest.approx(10 * np.log10(4 / 0.0004), rel=1e-4)


def test_bundles_reject_what_they_cannot_run(tmp_path):
    g = _tiny()
    with pytest.raises(ConfigError, match="known"):
        export_bundle(g, tmp_path, "tflite")
    with pytest.raises(ConfigError, match="real images"):
        export_bundle(g, tmp_path, "executorch-int8", size=(32, 32))


def test_ncnn_bundle_matches_pytorch_on_real_images(tmp_path, real):
    pytest.importorskip("pnnx")
    pytest.importorskip("ncnn")
    g, images = real
    meta = export_bundle(g, tmp_path / "ncnn", "ncnn", size=(32, 32), images=images)
    v = meta["verification"]
    assert v["inputs"] == "real" and v["images"] == 4
    assert v["psnr_db_min"] > 50 and v["max_abs_error"] < 1e-2, v
    # native ncnn layers: InstanceNorm and Deconvolution are not rewritten away
    assert meta["layers"]["InstanceNorm"] == 5 + 2 * 3 and meta["layers"]["Deconvolution"] == 2
    saved = json.loads((tmp_path / "ncnn" / "deploy.json").read_text())
    assert saved["input_size"] == [32, 32] and saved["channel_order"] == "RGB"
    assert saved["normalization"]["mean"] == 0.5 and (tmp_path / "ncnn" / "model.ncnn.bin").is_file()


def test_ncnn_example_program_runs(tmp_path, fonts32, real):
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    g, images = real
    export_bundle(g, tmp_path / "b", "ncnn", size=(32, 32), images=images)
    src = tmp_path / "in.png"
    image = ((images[0][0][0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(image).save(src)
    subprocess.run(
        [sys.executable, str(tmp_path / "b" / "run_example.py"), str(src), str(tmp_path / "o.png")],
        check=True,
        capture_output=True,
    )
    out = np.asarray(Image.open(tmp_path / "o.png")).astype(np.float32)
    with torch.no_grad():
        ref = ((g(images[0][0])[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    assert out.shape == (32, 32, 3) and np.abs(out - ref).max() <= 2.0


@pytest.mark.slow
def test_executorch_fp32_is_fully_delegated_and_matches(tmp_path, real):
    pytest.importorskip("executorch")
    g, images = real
    meta = export_bundle(g, tmp_path / "et", "executorch", size=(32, 32), images=images)
    # InstanceNorm and reflection padding as primitives: XNNPACK takes the whole network
    assert meta["delegation"] == {"delegate_calls": 1, "ops_outside_delegate": {}}, meta["delegation"]
    v = meta["verification"]
    assert v["psnr_db_min"] > 60 and v["max_abs_error"] < 1e-3, v
    assert (tmp_path / "et" / "model.pte").is_file() and "executorch.runtime" in (
        tmp_path / "et" / "run_example.py"
    ).read_text()


@pytest.mark.slow
def test_executorch_without_the_rewrites_falls_out_of_the_delegate():
    pytest.importorskip("executorch")
    from gancompress.export.executorch import delegation, lower_executorch

    edge, _ = lower_executorch(_tiny(), rewrites=("fold_norm_bias",), size=(32, 32))
    summary = delegation(edge)
    assert summary["delegate_calls"] > 5 and summary["ops_outside_delegate"].get("native_group_norm", 0) == 11


@pytest.mark.slow
def test_executorch_int8_on_real_images(tmp_path, real):
    pytest.importorskip("executorch")
    g, images = real
    meta = export_bundle(g, tmp_path / "q", "executorch-int8", size=(32, 32), images=images)
    assert meta["dtype"] == "int8" and meta["delegation"]["delegate_calls"] >= 1
    # int8 of a random-weight tiny network: close, not exact
    assert meta["verification"]["psnr_db_min"] > 20, meta["verification"]


def test_coreml_package_is_structurally_right(tmp_path):
    pytest.importorskip("coremltools")
    from gancompress.export.coreml import coreml_ops, export_coreml

    path = export_coreml(_tiny(), tmp_path / "g.mlpackage", size=(32, 32))
    info = coreml_ops(path)
    assert info["inputs"] == {"input": [1, 3, 32, 32]} and info["outputs"] == {"output": [1, 3, 32, 32]}
    assert info["ops"]["instance_norm"] == 11 and info["ops"]["conv_transpose"] == 2
    assert info["ops"]["conv"] == 10 and info["ops"]["tanh"] == 1


def test_export_cli_writes_an_ncnn_bundle_verified_on_real_images(tmp_path, fonts32, capsys):
    pytest.importorskip("pnnx")
    pytest.importorskip("ncnn")
    from gancompress.cli import main
    from gancompress.export.saved import save_generator

    save_generator(_tiny(), tmp_path / "saved")
    args = ["export", str(tmp_path / "saved"), "--out", str(tmp_path / "x"), "--data", str(fonts32)]
    code = main([*args, "--format", "ncnn", "--calibration", "3", "--mobile-size", "32", "32"])
    assert code == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert set(files) == {"ncnn"} and files["ncnn"].endswith("ncnn/model.ncnn.param")
    meta = json.loads((tmp_path / "x" / "ncnn" / "deploy.json").read_text())
    assert meta["verification"]["inputs"] == "real" and meta["verification"]["images"] == 3
    assert meta["verification"]["psnr_db_min"] > 50 and meta["input_size"] == [32, 32]
    assert (tmp_path / "x" / "ncnn" / "run_example.py").is_file()


def test_bad_model_files_name_the_file(tmp_path):
    from gancompress.errors import CheckpointError

    pytest.importorskip("executorch")
    from gancompress.export.executorch import executorch_callable

    junk = tmp_path / "junk.pte"
    junk.write_bytes(b"not a program")
    with pytest.raises(CheckpointError, match="junk.pte"):
        executorch_callable(junk)
    with pytest.raises(CheckpointError, match="missing.pte"):
        executorch_callable(tmp_path / "missing.pte")


def test_ncnn_model_without_its_weights_is_refused(tmp_path):
    pytest.importorskip("ncnn")
    from gancompress.errors import CheckpointError
    from gancompress.export.ncnn import export_ncnn, ncnn_callable

    (tmp_path / "m.ncnn.param").write_text("7767517\n0 0\n")
    with pytest.raises(CheckpointError, match="m.ncnn.param"):
        ncnn_callable(tmp_path / "m.ncnn.param")
    with pytest.raises(ConfigError, match=".param"):
        export_ncnn(_tiny(), tmp_path / "m.onnx")
