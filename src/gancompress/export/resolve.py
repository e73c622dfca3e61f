"""One resolver for the generator argument of every verb (profile, evaluate, compress, export, benchmark).

``load_any_generator(path, overrides)`` accepts

* a saved generator directory (``config.json`` + ``model.safetensors``);
* a state-dict file: ``.pth``/``.pt``/``.ckpt`` (read with ``torch.load(weights_only=True)``, so no code
  runs) or ``.safetensors``, in the pytorch-CycleGAN-and-pix2pix layout or a close variant (see
  :mod:`gancompress.export.official`), bare or wrapped in a dict (``state_dict``, ``G``, ``netG``,
  ``model``, ``generator``, ``G_A`` …, found by content, not by name), with or without DataParallel's
  ``module.`` prefix;
* a folder of official checkpoints holding one ``*net_G*.pth``.

It returns the generator and a :class:`Provenance` saying what was read, how, and what was assumed.
Anything the file cannot tell can be set with :class:`Overrides`; a file that fits several readings
raises :class:`AmbiguousCheckpointError` listing them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Generator
from .official import (
    NORM_CHOICES,
    PADDING_CHOICES,
    AmbiguousCheckpointError,
    Inference,
    build_from_inference,
    infer_architecture,
    read_pth,
)
from .saved import CONFIG_NAME, load_generator

__all__ = [
    "AmbiguousCheckpointError",
    "Overrides",
    "Provenance",
    "add_checkpoint_options",
    "import_checkpoint",
    "load_any_generator",
    "load_generator_arg",
    "overrides_from_args",
]


@dataclass(frozen=True)
class Overrides:
    """Options that replace what the resolver would infer (None: infer it).

    ``entry`` picks one state dict out of a wrapping dict (``"G_A"``, ``"state_dict.netG"``).
    """

    family: str | None = None
    norm: str | None = None  # instance | instance-affine | batch
    num_blocks: int | None = None
    num_downs: int | None = None
    dropout: float | None = None
    padding: str | None = None  # reflect | replicate | zero
    entry: str | None = None

    def __post_init__(self) -> None:
        if self.norm is not None and self.norm not in NORM_CHOICES:
            raise ConfigError(f"--norm must be one of {', '.join(NORM_CHOICES)}, got {self.norm!r}")
        if self.padding is not None and self.padding not in PADDING_CHOICES:
            raise ConfigError(f"--padding must be one of {', '.join(PADDING_CHOICES)}, got {self.padding!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class Provenance:
    """Where a generator came from and how its architecture was decided."""

    source: str
    format: str  # "saved" | "state-dict"
    family: str
    options: dict[str, Any]
    entry: str | None = None  # the wrapping dict's key that held the state dict
    found: dict[str, str] = field(default_factory=dict)  # option -> how the file shows it
    assumed: dict[str, str] = field(default_factory=dict)  # option -> why it was assumed
    overridden: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable account, one line per decision."""
        if self.format == "saved":
            return [f"{self.source}: saved {self.family} generator"]
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items() if v is not None)
        out = [f"{self.source}: {self.family} generator ({opts})"]
        if self.entry:
            out.append(f"  state dict taken from entry {self.entry!r}")
        out += [f"  {k}: read from the file — {v}" for k, v in self.found.items() if k not in self.overridden]
        out += [f"  {k}: assumed — {v}" for k, v in self.assumed.items() if k not in self.overridden]
        out += [f"  {k}: {v!r} as given on the command line" for k, v in self.overridden.items()]
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_any_generator(
    path: str | os.PathLike | Mapping[str, Any],
    overrides: Overrides | None = None,
    *,
    train: bool = False,
) -> tuple[Generator, Provenance]:
    """Load a generator from a saved directory, an official ``.pth`` or a close variant.

    ``train=True`` is for callers that will train the network or save it for training (compress,
    import): then an option that changes train-mode outputs (the dropout rate) must be known, from the
    file or from ``overrides``, or :class:`AmbiguousCheckpointError` lists the choices.

    Example:
        >>> g, prov = load_any_generator("latest_net_G.pth", Overrides(norm="instance-affine"))
        >>> print("\\n".join(prov.lines()))
    """
    generator, prov, _ = _resolve(path, overrides or Overrides(), train)
    return generator, prov


def _resolve(
    path: str | os.PathLike | Mapping[str, Any], overrides: Overrides, train: bool
) -> tuple[Generator, Provenance, tuple[dict[str, torch.Tensor], Inference] | None]:
    if isinstance(path, Mapping):
        return _from_object(dict(path), "state dict", overrides, train)
    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            given = overrides.given()
            if given:
                raise ConfigError(
                    f"{path} is a saved generator (its {CONFIG_NAME} fixes the architecture); "
                    f"{', '.join('--' + k.replace('_', '-') for k in given)} apply to state-dict checkpoints"
                )
            generator = load_generator(path)
            options = dict(generator.get_config().get("options", {}))
            return generator, Provenance(str(path), "saved", generator.family, options), None
        path = _checkpoint_in_folder(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        obj = read_pth(path)
    return _from_object(obj, str(path), overrides, train)


def _checkpoint_in_folder(folder: Path) -> Path:
    found = sorted(folder.glob("*net_G*.pth")) or sorted(folder.glob("*.pth"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise CheckpointError(
            f"{folder}: neither a saved generator ({CONFIG_NAME}) nor a folder with a .pth file"
        )
    raise AmbiguousCheckpointError(
        f"{folder}: holds {len(found)} generator checkpoints", [f"pass {p}" for p in found]
    )


def _strip_module(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DataParallel's ``module.`` path components (no official generator has a module named so)."""
    return {".".join(p for p in k.split(".") if p != "module"): v for k, v in state.items()}


def _state_dicts(obj: Any, name: str = "", depth: int = 0) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Every mapping of names to tensors inside ``obj``, with its dotted entry name."""
    if not isinstance(obj, Mapping) or depth > 3:
        return []
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    out = []
    if tensors and len(tensors) == len(obj):
        out.append((name, tensors))
        # a trainer's one dict of several networks ({"netG.model.1.weight", "netD.model.0.weight"})
        heads = {k.split(".", 1)[0] for k in tensors if "." in k}
        if len(heads) > 1:
            for head in sorted(heads):
                sub = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(head + ".")}
                out.append((f"{name}.{head}" if name else head, sub))
        return out
    for key, value in obj.items():
        if isinstance(key, str):
            out += _state_dicts(value, f"{name}.{key}" if name else key, depth + 1)
    return out


def _from_object(
    obj: Any, source: str, overrides: Overrides, train: bool
) -> tuple[Generator, Provenance, tuple[dict[str, torch.Tensor], Inference]]:
    candidates = [(entry, _strip_module(sd)) for entry, sd in _state_dicts(obj)]
    if not candidates:
        raise CheckpointError(f"{source}: expected a state dict (a mapping of names to tensors), found none")
    if overrides.entry is not None:
        chosen = [c for c in candidates if c[0] == overrides.entry]
        if not chosen:
            names = ", ".join(repr(e or "(top level)") for e, _ in candidates)
            raise CheckpointError(
                f"{source}: no state dict under --entry {overrides.entry!r}; entries: {names}"
            )
        candidates = chosen
    readings: list[tuple[str, dict[str, torch.Tensor], Inference]] = []
    errors: list[str] = []
    family = overrides.family
    for entry, sd in candidates:
        try:
            readings.append((entry, sd, infer_architecture(sd, family)))
        except CheckpointError as exc:
            errors.append(f"{entry or '(top level)'}: {exc}" if len(candidates) > 1 else str(exc))
    if not readings:
        raise CheckpointError(f"{source}: " + "; ".join(errors))
    if len(readings) > 1:
        raise AmbiguousCheckpointError(
            f"{source}: {len(readings)} entries read as generators",
            [f"--entry {e} ({inf.family}, {inf.options['base_width']} wide)" for e, _, inf in readings],
        )
    entry, state, inference = readings[0]
    generator, prov = _build(state, inference, source, entry or None, overrides, train)
    return generator, prov, (state, inference)


def _build(
    state: dict[str, torch.Tensor],
    inference: Inference,
    source: str,
    entry: str | None,
    overrides: Overrides,
    train: bool,
) -> tuple[Generator, Provenance]:
    given = {k: v for k, v in overrides.given().items() if k not in ("entry", "family")}
    if inference.family == "resnet" and "num_downs" in given:
        raise ConfigError("--num-downs applies to U-Net checkpoints; this one reads as a ResNet")
    if inference.family == "unet" and ({"num_blocks", "padding"} & set(given)):
        raise ConfigError("--num-blocks / --padding apply to ResNet checkpoints; this one reads as a U-Net")
    for key in ("num_blocks", "num_downs"):
        if key in given and given[key] != inference.options[key]:
            raise CheckpointError(
                f"{source}: --{key.replace('_', '-')} {given[key]} contradicts the file, which holds "
                f"{inference.options[key]} ({inference.found[key]})"
            )
    assumed = dict(inference.unknown)
    if "dropout" in assumed and "dropout" not in given:
        if train:
            raise AmbiguousCheckpointError(
                f"{source}: the dropout rate changes train-mode outputs and the file cannot tell it "
                f"({assumed['dropout']})",
                ["--dropout 0.5 (pix2pix trained with dropout)", "--dropout 0 (no dropout; gan-compression)"],
            )
        assumed["dropout"] += "; 0 used (eval-mode outputs do not depend on it)"
    inference.options.update(given)
    if overrides.family is not None:
        given["family"] = overrides.family
    generator = build_from_inference(state, inference, source)
    options = {k: v for k, v in inference.options.items() if not (k == "arch" and v is None)}
    prov = Provenance(
        source, "state-dict", inference.family, options, entry, dict(inference.found), assumed, given
    )
    return generator, prov


# ---- command-line glue: the same options on every verb that takes a generator ----------------------


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """Add the override options (``--norm``, ``--family``, …) for a state-dict checkpoint argument."""
    from ..utils.options import number, positive_int

    g = parser.add_argument_group(
        "checkpoint import", "override what is read from a .pth checkpoint (saved directories need none)"
    )
    g.add_argument("--family", dest="ckpt_family", choices=("resnet", "unet"), help="generator family")
    g.add_argument("--norm", dest="ckpt_norm", choices=NORM_CHOICES, help="norm of the checkpoint's network")
    g.add_argument(
        "--num-blocks", dest="ckpt_num_blocks", type=positive_int(4096), help="ResNet residual blocks"
    )
    g.add_argument("--num-downs", dest="ckpt_num_downs", type=positive_int(16), help="U-Net levels")
    g.add_argument(
        "--dropout",
        dest="ckpt_dropout",
        type=number(float, low=0.0, high=1.0, high_open=True),
        help="dropout rate (e.g. 0.5 or 0)",
    )
    g.add_argument("--padding", dest="ckpt_padding", choices=PADDING_CHOICES, help="ResNet block padding")
    g.add_argument("--entry", dest="ckpt_entry", help="key of the state dict in a wrapping dict, e.g. G_A")


def overrides_from_args(args: argparse.Namespace) -> Overrides:
    """The :class:`Overrides` given by :func:`add_checkpoint_options`' options (none if absent)."""
    return Overrides(**{f.name: getattr(args, f"ckpt_{f.name}", None) for f in fields(Overrides)})


def load_generator_arg(
    path: str | os.PathLike, args: argparse.Namespace | Overrides | None = None, *, train: bool = False
) -> Generator:
    """Resolve a verb's generator argument, print what was inferred (stderr), return the generator.

    ``args`` is the verb's parsed arguments (with :func:`add_checkpoint_options`) or an :class:`Overrides`.
    """
    if isinstance(args, Overrides):
        overrides = args
    else:
        overrides = overrides_from_args(args) if args is not None else Overrides()
    generator, prov = load_any_generator(path, overrides, train=train)
    if prov.format != "saved":
        print("\n".join(prov.lines()), file=sys.stderr)
    return generator


def import_checkpoint(
    path: str | os.PathLike, out: str | os.PathLike, overrides: Overrides | None = None, *, atol: float = 1e-5
) -> dict[str, Any]:
    """Import a checkpoint into a saved generator directory and check it (``gancompress import``).

    The check runs one input through the reloaded directory and through the file's own tensors in the
    official module order (:func:`~gancompress.export.official.reference_forward`); a difference above
    ``atol`` raises :class:`CheckpointError` and the directory is removed.
    """
    import shutil

    from .official import reference_forward
    from .saved import save_generator

    generator, prov, original = _resolve(path, overrides or Overrides(), train=True)
    out = save_generator(generator, out, extra={"imported_from": str(path), "provenance": prov.to_dict()})
    reloaded = load_generator(out)
    side = max(64, 2 ** int(reloaded.options.get("num_downs", 0)))
    x = reloaded.example_input((side, side), batch=2)
    with torch.no_grad():
        got = reloaded(x)
        want = reference_forward(*original, x) if original is not None else generator(x)
    diff = float((got - want).abs().max())
    if not diff <= atol:
        shutil.rmtree(out, ignore_errors=True)
        raise CheckpointError(
            f"{path}: the imported network differs from the checkpoint's own layers by {diff:.3g} "
            f"(tolerance {atol:g}) at {side}×{side}; nothing was written"
        )
    return {"source": str(path), "out": str(out), "max_abs_diff": diff, "check_size": side, **prov.to_dict()}
