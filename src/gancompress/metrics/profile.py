"""Parameters and MACs in the two conventions users need, with a per-layer breakdown.

``macs_paper`` reproduces the published tables, which were made with torchprofile (batch 1):

* convolution: output elements × in_channels/groups × k²; **ConvTranspose2d is counted on its output
  grid** (output elements × in_channels × k²), 4× the real work for stride 2;
* matrix products: n × k × m;
* element-wise multiplications (SPADE's modulation, AdaIN, MUNIT's layer norm): one per output element;
* normalisation: one per element when it has affine parameters, zero otherwise;
* ReLU, additions, padding, pooling and nearest upsampling: zero.

``macs_true`` is the real multiply-accumulate count: the same, except that a transposed convolution
is counted on its input grid (input elements × out_channels/groups × k²). For convolution networks it
equals half of ``torch.utils.flop_counter``'s FLOPs.

Written by hand rather than calling torchprofile because torchprofile requires torchvision (which does
not import beside this torch build) and traces with the deprecated ``torch.jit.trace``, and because
``torch.utils.flop_counter`` ignores element-wise multiplications and has no paper convention. This
counter intercepts the ATen operators themselves (a ``TorchDispatchMode``), so functional code is seen
exactly as torchprofile's trace saw it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.module_tracker import ModuleTracker

aten = torch.ops.aten


@dataclass
class LayerStat:
    """MACs attributed to one module (its own operators, not its children's)."""

    name: str
    kind: str
    macs_paper: int = 0
    macs_true: int = 0
    params: int = 0


@dataclass
class ProfileResult:
    """What ``profile_model`` measured."""

    params: int
    macs_paper: int
    macs_true: int
    input_shape: list[int]
    layers: list[LayerStat] = field(default_factory=list)
    norm_elements: int = 0

    def to_dict(self, layers: bool = False) -> dict[str, Any]:
        out = {
            "params": self.params,
            "macs_paper": self.macs_paper,
            "macs_true": self.macs_true,
            "macs_paper_with_norm": self.macs_paper + self.norm_elements,
            "input_shape": self.input_shape,
            "conventions": {
                "macs_paper": "torchprofile convention of the published tables (ConvTranspose on the output grid)",
                "macs_true": "real multiply-accumulates (ConvTranspose on the input grid)",
                "macs_paper_with_norm": "macs_paper + 1 per non-affine normalisation element (older torchprofile)",
            },
        }
        if layers:
            out["layers"] = [asdict(s) for s in self.layers]
        return out


def _numel(shape: Any) -> int:
    return math.prod(int(s) for s in shape)


class _MacCounter(TorchDispatchMode):
    def __init__(self, tracker: ModuleTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self.paper: dict[str, int] = defaultdict(int)
        self.true: dict[str, int] = defaultdict(int)
        self.norm_elements = 0

    def _owner(self) -> str:
        parents = [p for p in self.tracker.parents if p != "Global"]
        return max(parents, key=len) if parents else "Global"

    def _add(self, paper: int, true: int) -> None:
        owner = self._owner()
        self.paper[owner] += paper
        self.true[owner] += true

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if packet is aten.convolution:
            x, w = args[0], args[1]
            transposed = bool(args[6])
            k = _numel(w.shape[2:])
            if transposed:  # weight: in × out/groups × k
                paper = out.numel() * w.shape[0] * k
                true = x.numel() * w.shape[1] * k
            else:  # weight: out × in/groups × k
                paper = true = out.numel() * w.shape[1] * k
            self._add(paper, true)
        elif packet in (aten.mm, aten.bmm):
            a, b = args[0], args[1]
            macs = _numel(a.shape) * b.shape[-1]
            self._add(macs, macs)
        elif packet in (aten.addmm, aten.baddbmm):
            a, b = args[1], args[2]
            macs = _numel(a.shape) * b.shape[-1]
            self._add(macs, macs)
        elif packet in (aten.mul, aten.mul_):
            self._add(out.numel(), out.numel())
        elif packet in (
            aten.native_batch_norm,
            aten._native_batch_norm_legit,
            aten._native_batch_norm_legit_no_training,
        ):
            self._norm(args[1], args[0])
        elif packet is aten.native_layer_norm:
            self._norm(args[2], args[0])
        elif packet is aten.native_group_norm:
            self._norm(args[1], args[0])
        return out

    def _norm(self, weight: Any, x: torch.Tensor) -> None:
        if weight is not None:
            self._add(x.numel(), x.numel())
        else:
            self.norm_elements += x.numel()


def profile_model(model: nn.Module, *inputs: Any, **kwargs: Any) -> ProfileResult:
    """Count parameters and MACs of one forward pass of ``model(*inputs, **kwargs)``.

    Example:
        >>> from gancompress.models import create_generator
        >>> g = create_generator("resnet")
        >>> r = profile_model(g, g.example_input())
        >>> r.macs_paper, r.macs_true, r.params
        (56799264768, 49551507456, 11378179)
    """
    was_training = model.training
    model.eval()
    tracker = ModuleTracker()
    counter = _MacCounter(tracker)
    try:
        with torch.no_grad(), tracker, counter:
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    prefix = type(model).__name__
    layers = []
    for owner in sorted(set(counter.paper) | set(counter.true)):
        name = (
            owner.split(".", 1)[1] if owner.startswith(prefix + ".") else ("" if owner == prefix else owner)
        )
        module = modules.get(name)
        n_params = sum(p.numel() for p in module.parameters(recurse=False)) if module is not None else 0
        layers.append(
            LayerStat(
                name=name or "(top)",
                kind=type(module).__name__ if module is not None else "?",
                macs_paper=counter.paper[owner],
                macs_true=counter.true[owner],
                params=n_params,
            )
        )
    shape = list(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else []
    return ProfileResult(
        params=sum(p.numel() for p in model.parameters()),
        macs_paper=sum(counter.paper.values()),
        macs_true=sum(counter.true.values()),
        input_shape=shape,
        layers=layers,
        norm_elements=counter.norm_elements,
    )


def profile_generator(
    generator: nn.Module, size: tuple[int, int] | None = None, batch: int = 1
) -> ProfileResult:
    """Profile a gancompress generator on its family's example input (``size`` = (H, W)).

    A generator built on the meta device (``with torch.device("meta"): ...``) is profiled without
    computing anything, which makes full-size counts instant.
    """
    from ..errors import ConfigError

    # -- validate before allocating (export/limits.py): counts come from shapes, so a plain generator is
    # profiled as its meta-device twin; `profile --size 100000 100000` computes nothing and allocates nothing
    from ..export.limits import plain_meta_twin

    generator = plain_meta_twin(generator)
    param = next(generator.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.device(device if device.type == "meta" else "cpu"):  # a meta example allocates nothing
        example = generator.example_input(size, batch).to(device)  # type: ignore[operator]
    # -- end
    try:
        return profile_model(generator, example)
    except RuntimeError as exc:
        # Almost always an input too small for the network's downsampling (a user's --size or crop).
        family = getattr(generator, "family", type(generator).__name__)
        raise ConfigError(
            f"a {family} generator cannot run on a {tuple(example.shape[-2:])} input: {exc}"
        ) from None
