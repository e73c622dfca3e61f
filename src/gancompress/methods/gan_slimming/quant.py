"""Quantisation-aware training with the straight-through estimator (GAN Slimming's GS-8).

As the official code (VITA-Group/GAN-Slimming ``models/models.py``): weights of every conv are
quantised symmetrically per layer (scale = max|W| / (2^(b−1)−1)); the activation entering every conv
but the first is clamped to [0, act_max] and rounded with step act_max / 2^b (4/256 at 8 bits: the 257
levels 0, 4/256, …, 4 of its ``LinQuantSteOp``). That clamp holds for the ResNet's residual trunk too,
which the official code clamps to [0, 4] like every other conv input (``inputs="unsigned"``, the
default for ResNet). ``inputs="probe"`` (the default for the other families, whose LeakyReLU outputs
are negative) instead finds by one probing forward pass which inputs can be negative and quantises
those symmetrically on [−act_max, act_max]. The rounding's gradient is passed straight through; the
clamp's is the clamp's own.

Weights are quantised through ``torch.nn.utils.parametrize`` (so the optimiser keeps updating the
full-precision latent weights) and activations through forward pre-hooks; ``QuantizedGenerator``
attaches both and ``remove`` takes them off, optionally baking the quantised weights in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...errors import ConfigError
from ...models import Generator

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - autograd signature
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return grad


def quantize_ste(x: torch.Tensor, bits: int, max_val: torch.Tensor | float, signed: bool) -> torch.Tensor:
    """Clamp ``x`` to the range and round it to the ``bits``-bit grid; the rounding's gradient is 1.

    Signed: symmetric on [−max, max] with 2^(b−1)−1 positive levels; unsigned: [0, max] in steps of
    max / 2^b (2^b + 1 levels, as the official ``LinQuantSteOp``).

    Example:
        >>> quantize_ste(torch.tensor([0.3, 5.0]), 8, 4.0, signed=False)   # 5.0 clamps to 4.0
    """
    levels = 2 ** (bits - 1) - 1 if signed else 2**bits
    max_val = torch.as_tensor(max_val, dtype=x.dtype, device=x.device).clamp(min=1e-12)
    scale = max_val / levels
    x = torch.clamp(x, -max_val if signed else torch.zeros_like(max_val), max_val)
    return _RoundSTE.apply(x / scale) * scale


class WeightQuantizer(nn.Module):
    """A parametrisation: symmetric per-layer quantisation of a weight tensor (``bits`` is a buffer)."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.register_buffer("bits", torch.tensor(int(bits)))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return quantize_ste(weight, int(self.bits), weight.detach().abs().max(), signed=True)


@dataclass
class QuantizedGenerator:
    """Fake quantisation attached to a generator's convs; ``signed`` and ``first`` come from a probe.

    Example:
        >>> q = QuantizedGenerator.attach(student, bits=8, act_max=4.0, probe=teacher)
        >>> q.remove(bake=True)    # plain convs again, weights on the int8 grid
    """

    generator: Generator
    bits: int
    act_max: float
    inputs: dict[str, str] = field(default_factory=dict)  # conv name -> none | unsigned | signed
    _handles: list = field(default_factory=list)

    @classmethod
    def attach(
        cls,
        generator: Generator,
        bits: int,
        act_max: float,
        probe: Generator | None = None,
        inputs: str | None = None,
    ) -> QuantizedGenerator:
        """Quantise ``generator`` (bits < 32).

        ``inputs``: ``unsigned`` (every conv input but the first on [0, act_max], the official code;
        the default for ResNet) or ``probe`` (``probe``, default the generator itself, decides which
        inputs are signed; the default for other families).
        """
        if not 2 <= bits < 32:
            raise ConfigError(f"quantisation needs 2 <= bits < 32, got {bits}")
        if inputs is None:
            inputs = "unsigned" if generator.family == "resnet" else "probe"
        if inputs not in ("unsigned", "probe"):
            raise ConfigError(f"quantisation inputs must be 'unsigned' or 'probe', got {inputs!r}")
        plan = conv_input_plan(probe if probe is not None else generator)
        if inputs == "unsigned":
            plan = {n: "unsigned" if kind == "signed" else kind for n, kind in plan.items()}
        q = cls(generator, bits, act_max, plan)
        modules = dict(generator.named_modules())
        for name, kind in plan.items():
            module = modules[name]
            parametrize.register_parametrization(module, "weight", WeightQuantizer(bits))
            if kind != "none":
                q._handles.append(module.register_forward_pre_hook(q._hook(kind == "signed")))
        return q

    def _hook(self, signed: bool):
        bits, act_max = self.bits, self.act_max

        def hook(module: nn.Module, args: tuple) -> tuple:
            return (quantize_ste(args[0], bits, act_max, signed), *args[1:])

        return hook

    def remove(self, bake: bool = False) -> None:
        """Take the quantisers off; with ``bake`` the weights keep their quantised values."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        modules = dict(self.generator.named_modules())
        for name in self.inputs:
            module = modules[name]
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=bake)


@torch.no_grad()
def conv_input_plan(generator: Generator) -> dict[str, str]:
    """For each conv: ``none`` (the first layer, it reads the input image), ``unsigned`` or ``signed``.

    One forward pass on the family's example input records the order of the convs and the sign of
    what enters each; an input that is never negative there comes out of a ReLU.
    """
    order: list[str] = []
    negative: dict[str, bool] = {}
    handles = []
    for name, module in generator.named_modules():
        if isinstance(module, CONV_TYPES):

            def hook(m, args, name=name):  # noqa: ANN001 - torch hook
                if name not in negative:
                    order.append(name)
                    negative[name] = False
                negative[name] |= bool((args[0] < 0).any())

            handles.append(module.register_forward_pre_hook(hook))
    was = generator.training
    try:
        side = max(32, 2 ** int(generator.options.get("num_downs", 0)))
        device = next(generator.parameters()).device
        generator.eval()(generator.example_input((side, side), batch=2).to(device))
    finally:
        generator.train(was)
        for h in handles:
            h.remove()
    if not order:
        raise ConfigError(f"{generator.family} generator has no convolutions to quantise")
    return {n: "none" if i == 0 else ("signed" if negative[n] else "unsigned") for i, n in enumerate(order)}
