"""The GauGAN (SPADE) generator.

Architecture string (8 numbers at the scale of ``base_width``)::

    trunk(×16) _ head_0 hidden(×16) _ G_middle_0 hidden(×16) _ G_middle_1 hidden(×16)
    _ up_0(×8) _ up_1(×4) _ up_2(×2) _ up_3(×1)

The trunk is the width of ``fc`` and of the three residual blocks that keep it (their identity
shortcuts tie them); each ``up_i`` number is that block's output (and inner) width. As in GAN
Compression's SubMobileSPADEGenerator, the hidden width of a block's SPADEs scales with the block's
own number (``spade_hidden × number / base_width``: 2 × number at the defaults), so the teacher
``64_…_64`` keeps GauGAN's 128 everywhere.

``separable=True`` is the mobile family (MobileSPADE / SubMobileSPADE): SPADE's ``mlp_gamma`` and
``mlp_beta`` become separable convolutions. The released strings then build the official networks,
e.g. Cityscapes ``32_40_40_32_40_24_32_24`` (21.0M parameters, 31.2G MACs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from ..arch import ArchSpec, WidthGroup
from ..errors import ConfigError
from ..layers.elastic import ElasticConv2d
from ..layers.spade import SPADEResnetBlock
from .base import Generator
from .registry import GENERATORS

SPADE_GROUPS = (
    WidthGroup("trunk", 16, "fc output = head_0/G_middle widths"),
    WidthGroup("head_0", 16, "head_0 inner width"),
    WidthGroup("G_middle_0", 16, "G_middle_0 inner width"),
    WidthGroup("G_middle_1", 16, "G_middle_1 inner width"),
    WidthGroup("up_0", 8, "up_0 output width"),
    WidthGroup("up_1", 4, "up_1 output width"),
    WidthGroup("up_2", 2, "up_2 output width"),
    WidthGroup("up_3", 1, "up_3 output width (feeds conv_img)"),
)


@dataclass(frozen=True)
class SpadePreset:
    label_channels: int
    size: tuple[int, int]
    num_upsampling_layers: str


SPADE_PRESETS = {
    # 35 Cityscapes labels + the instance edge map, 256×512
    "cityscapes": SpadePreset(label_channels=36, size=(256, 512), num_upsampling_layers="more"),
    # 182 COCO-Stuff labels + "don't care" + the instance edge map, 256×256
    "coco": SpadePreset(label_channels=184, size=(256, 256), num_upsampling_layers="normal"),
    # ADE20K: 150 labels + "don't care", no instance maps
    "ade20k": SpadePreset(label_channels=151, size=(256, 256), num_upsampling_layers="normal"),
}


@GENERATORS.register("spade")
class SpadeGenerator(Generator):
    """GauGAN generator without the VAE encoder; input is the one-hot label map (+ instance edges).

    ``preset`` fills ``label_channels``, the default size and ``num_upsampling_layers``; explicit
    arguments override it. ``spectral_norm=True`` wraps every conv as GauGAN trains it; call
    :meth:`remove_spectral_norm` before distillation or export.
    """

    family = "spade"
    feature_points = ("head_0", "G_middle_1", "up_1")

    def __init__(
        self,
        arch: ArchSpec | str | None = None,
        *,
        preset: str | None = "cityscapes",
        label_channels: int | None = None,
        out_channels: int = 3,
        base_width: int = 64,
        num_upsampling_layers: str | None = None,
        spade_hidden: int = 128,
        separable: bool = False,
        param_free_norm: str = "batch",
        spectral_norm: bool = False,
        size: tuple[int, int] | list[int] | None = None,
    ) -> None:
        if preset is not None and preset not in SPADE_PRESETS:
            raise ConfigError(f"unknown spade preset {preset!r}; known: {sorted(SPADE_PRESETS)}")
        p = SPADE_PRESETS.get(preset) if preset else None
        label_channels = label_channels if label_channels is not None else (p.label_channels if p else None)
        if label_channels is None:
            raise ConfigError("spade needs label_channels (or a preset)")
        num_up = num_upsampling_layers or (p.num_upsampling_layers if p else "normal")
        if num_up not in ("normal", "more"):
            raise ConfigError(f"spade.num_upsampling_layers must be 'normal' or 'more', got {num_up!r}")
        size = tuple(size) if size is not None else (p.size if p else (256, 256))
        options = dict(
            preset=preset,
            label_channels=label_channels,
            out_channels=out_channels,
            base_width=base_width,
            num_upsampling_layers=num_up,
            spade_hidden=spade_hidden,
            separable=separable,
            param_free_norm=param_free_norm,
            spectral_norm=spectral_norm,
            size=list(size),
        )
        super().__init__(arch, options)
        ch = self.arch.channels(self.width_groups)
        hid = self._hidden(ch)
        t = ch["trunk"]
        self.fc = ElasticConv2d(label_channels, t, 3, padding=1)
        kw = dict(norm=param_free_norm, separable=separable)
        for name in ("head_0", "G_middle_0", "G_middle_1"):
            block = SPADEResnetBlock(
                t, t, ch[name], label_channels, hidden=hid[name], learned_shortcut=False, **kw
            )
            setattr(self, name, block)
        prev = t
        ups = []
        for name in ("up_0", "up_1", "up_2", "up_3"):
            ups.append(
                SPADEResnetBlock(
                    prev, ch[name], ch[name], label_channels, hidden=hid[name], learned_shortcut=True, **kw
                )
            )
            prev = ch[name]
        self.up_0, self.up_1, self.up_2, self.up_3 = ups
        self.conv_img = ElasticConv2d(prev, out_channels, 3, padding=1)
        if spectral_norm:
            for module in self.modules():
                if isinstance(module, ElasticConv2d) and module is not self.conv_img:
                    add_spectral_norm(module)

    @property
    def width_groups(self) -> tuple[WidthGroup, ...]:
        return SPADE_GROUPS

    def _hidden(self, ch: dict[str, int]) -> dict[str, int]:
        """SPADE hidden width of each block: ``spade_hidden`` scaled by the block's number."""
        o = self.options
        return {
            g.name: max(1, o["spade_hidden"] * ch[g.name] // (g.multiplier * o["base_width"]))
            for g in SPADE_GROUPS[1:]
        }

    def follows_width(self, key: str, dim: int) -> bool:
        # SPADE's hidden channels: mlp_shared's output, the depthwise part and the input of the
        # modulation convs. Their count is 2 × the block's number, but they are not its channels.
        if ".mlp_shared." in key:
            return dim == 0
        if ".mlp_gamma." in key or ".mlp_beta." in key:
            return dim == 0 if ".depthwise." in key else dim == 1
        return False

    @property
    def default_size(self) -> tuple[int, int]:
        return tuple(self.options["size"])  # type: ignore[return-value]

    @property
    def num_up(self) -> int:
        return 5 if self.options["num_upsampling_layers"] == "normal" else 6

    def remove_spectral_norm(self) -> None:
        """Fold the spectral-norm parametrisation into plain weights (GAN Compression does this first)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        self.options["spectral_norm"] = False

    def feature_channels(self, arch: ArchSpec | str | None = None) -> dict[str, int]:
        ch = self.channels(arch)
        return {"head_0": ch["trunk"], "G_middle_1": ch["trunk"], "up_1": ch["up_1"]}

    def _forward(self, seg, ch, feats, want, **kwargs):
        hid = self._hidden(ch)
        if kwargs:
            raise ConfigError(f"spade generator takes no extra inputs, got {sorted(kwargs)}")
        h, w = seg.shape[2:]
        factor = 2**self.num_up
        if h % factor or w % factor:
            raise ConfigError(f"spade input {h}×{w} must be divisible by {factor}")
        x = F.interpolate(seg, size=(h // factor, w // factor), mode="nearest")
        x = self.fc(x, ch["trunk"])
        x = self.head_0(x, seg, ch["head_0"], hidden=hid["head_0"])
        if "head_0" in want:
            feats["head_0"] = x
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.G_middle_0(x, seg, ch["G_middle_0"], hidden=hid["G_middle_0"])
        if self.num_up == 6:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.G_middle_1(x, seg, ch["G_middle_1"], hidden=hid["G_middle_1"])
        if "G_middle_1" in want:
            feats["G_middle_1"] = x
        for name in ("up_0", "up_1", "up_2", "up_3"):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = getattr(self, name)(x, seg, ch[name], ch[name], hidden=hid[name])
            if name in want:
                feats[name] = x
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)

    def example_input(self, size: tuple[int, int] | None = None, batch: int = 1) -> torch.Tensor:
        """A random one-hot label map (the last channel: a random instance-edge map when present)."""
        h, w = size or self.default_size
        g = torch.Generator().manual_seed(0)
        n = self.options["label_channels"]
        labels = torch.randint(0, n, (batch, h // 8, w // 8), generator=g)
        labels = F.interpolate(labels[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
        return F.one_hot(labels, n).permute(0, 3, 1, 2).float()
