"""OpenVINO runs the exported fp32 and int8 graphs and gives PyTorch's (or ONNX Runtime's) output."""

import pytest
import torch

from gancompress.errors import CheckpointError, ConfigError
from gancompress.export.int8 import calibration_inputs, quantize_onnx_int8
from gancompress.export.onnx import export_onnx, ort_session, run_session
from gancompress.export.rewrite import example_inputs
from gancompress.models import create_generator
from tiny import TINY_GENERATORS, family_of

pytest.importorskip("openvino")

from gancompress.export.openvino import OpenVinoGenerator, openvino_model, run_openvino  # noqa: E402


def _tiny(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key]).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in g.parameters():  # non-trivial weights everywhere (affine norms included)
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return g


def _reference(g, inputs):
    with torch.no_grad():
        if g.family == "munit":
            return g.decode(g.encode_content(inputs[0]), inputs[1])
        return g(inputs[0])


@pytest.mark.parametrize("key", ["resnet", "resnet_separable", "unet", "munit"])
def test_openvino_fp32_parity(tmp_path, key):
    g = _tiny(key)
    path = export_onnx(g, tmp_path / "g.onnx", size=(32, 32))
    inputs = example_inputs(g, (48, 32) if g.family != "unet" else (64, 32), batch=2)
    ref = _reference(g, inputs)
    static = openvino_model(path, threads=1, shapes=[list(t.shape) for t in inputs])
    out = run_openvino(static, *inputs)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=2e-4, rtol=1e-3)
    # the module compiles one graph per input shape: a second shape gets its own
    module = OpenVinoGenerator(path, threads=1)
    torch.testing.assert_close(module(*inputs), ref, atol=2e-4, rtol=1e-3)
    one = tuple(t[:1] for t in inputs)
    torch.testing.assert_close(module(*one), _reference(g, one), atol=2e-4, rtol=1e-3)
    assert len(module._compiled) == 2


def test_openvino_int8_on_real_images_within_tolerance(tmp_path, fonts32):
    """OpenVINO reads the QDQ graph made for ONNX Runtime; on held-out real images it stays within
    the int8 tolerance of fp32."""
    torch.manual_seed(0)
    g = create_generator("resnet", **TINY_GENERATORS["resnet_separable"]).eval()
    fp32 = export_onnx(g, tmp_path / "g.onnx")
    int8 = quantize_onnx_int8(
        fp32, tmp_path / "g.int8.onnx", calibration_inputs(g, fonts32, count=16, size=32)
    )
    x = torch.cat([x for (x,) in calibration_inputs(g, fonts32, count=8, size=32, split="test")])
    ref32 = run_session(ort_session(fp32), x)
    ort8 = run_session(ort_session(int8), x)
    ov8 = run_openvino(openvino_model(int8, shapes=[list(x.shape)]), x)
    assert ov8.shape == ref32.shape and torch.isfinite(ov8).all()
    assert not torch.equal(ov8, ref32)  # the quantised graph really runs quantised
    # the stated int8 tolerance (docs/deployment.md) against fp32, as for ONNX Runtime
    err = (ov8 - ref32).abs()
    assert err.mean() <= 0.2 * ref32.std() and err.max() <= 0.5, (err.mean(), err.max())
    # OpenVINO's integer kernels round differently from ONNX Runtime's (requantisation, fused
    # post-ops), so the two int8 outputs are not equal; each is within the same tolerance of fp32
    assert (ort8 - ref32).abs().mean() <= 0.2 * ref32.std()


def test_openvino_errors(tmp_path):
    with pytest.raises(CheckpointError, match="missing.onnx"):
        openvino_model(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="bad.onnx"):
        openvino_model(bad)
    path = export_onnx(_tiny("resnet"), tmp_path / "g.onnx")
    with pytest.raises(ConfigError, match="threads"):
        openvino_model(path, threads=0)
    with pytest.raises(ConfigError, match="precision"):
        openvino_model(path, precision="f16")
    with pytest.raises(ConfigError, match="1 input"):
        openvino_model(path, shapes=[[1, 3, 32, 32], [1, 8]])
