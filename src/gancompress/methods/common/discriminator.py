"""The student's discriminator, shared by every method: built from the recipe's block, or started
from the teacher's (its weights, and its architecture when a ``discriminator.json`` sits beside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ...errors import CheckpointError
from ...models import create_discriminator
from .recipe import DiscriminatorConfig


def build_discriminator(
    cfg: DiscriminatorConfig, in_channels: int, out_channels: int
) -> tuple[nn.Module, str]:
    """The student's discriminator and a note on how it was initialised.

    With ``cfg.init_from`` (a safetensors file of the teacher's discriminator, or a directory holding
    ``discriminator.safetensors``) it starts from the teacher's weights, as the paper; else fresh.
    When a ``discriminator.json`` sits beside those weights (what ``gancompress train`` writes), the
    discriminator's architecture is the teacher's, read from it, rather than the recipe's.
    """
    channels = in_channels + out_channels if cfg.conditional else out_channels
    kwargs: dict[str, Any] = dict(
        in_channels=channels,
        base_width=cfg.base_width,
        num_layers=cfg.num_layers,
        norm=cfg.norm,
        spectral_norm=cfg.spectral_norm,
    )
    name = cfg.name
    path = None if cfg.init_from is None else Path(cfg.init_from)
    if path is not None and path.is_dir():
        path = path / "discriminator.safetensors"
    if path is not None and path.with_suffix(".json").is_file():
        name, kwargs = _saved_discriminator_config(path.with_suffix(".json"), in_channels, out_channels)
    elif name == "multiscale":
        kwargs["num_scales"] = cfg.num_scales
    disc = create_discriminator(name, **kwargs)
    if path is None:
        return disc, "fresh (no teacher discriminator given: set discriminator.init_from)"
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ...export.saved import load_state_strict

    if not path.is_file():
        raise CheckpointError(f"discriminator.init_from: {path} does not exist")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"discriminator.init_from: {path} is not a readable safetensors file ({exc})"
        ) from None
    load_state_strict(disc, state, str(path))
    return disc, f"initialised from the teacher's discriminator {path}"


def _saved_discriminator_config(
    path: Path, in_channels: int, out_channels: int
) -> tuple[str, dict[str, Any]]:
    """(name, constructor options) of a saved teacher discriminator from its ``discriminator.json``."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable discriminator config ({exc})") from None
    if not isinstance(data, dict) or "name" not in data or "in_channels" not in data:
        raise CheckpointError(f"{path}: a discriminator config needs 'name' and 'in_channels'")
    if data["in_channels"] not in (in_channels + out_channels, out_channels):
        raise CheckpointError(
            f"{path}: the teacher's discriminator reads {data['in_channels']} channels; this generator "
            f"gives {out_channels} ({in_channels + out_channels} with its input beside)"
        )
    keys = ("in_channels", "base_width", "num_layers", "norm", "spectral_norm")
    kwargs = {k: data[k] for k in keys if k in data}
    if data["name"] == "multiscale" and "num_scales" in data:
        kwargs["num_scales"] = data["num_scales"]
    return str(data["name"]), kwargs


def teacher_gan_mode(init_from: str | Path | None) -> str | None:
    """The GAN objective the teacher's discriminator was trained with, when its files record it.

    Read from ``discriminator.json`` (a ``gan_mode`` field) or from the teacher generator's
    ``config.json`` beside it (``meta.recipe.loss.gan_mode``, what ``gancompress train`` writes);
    None when neither says. A discriminator trained with the vanilla (BCE) loss gives logits far
    beyond the hinge margins, so under a hinge loss it starts saturated and never learns again.
    """
    import json

    if init_from is None:
        return None
    path = Path(init_from)
    folder = path if path.is_dir() else path.parent
    d_json = (path / "discriminator.safetensors" if path.is_dir() else path).with_suffix(".json")
    for source, keys in (
        (d_json, ("gan_mode",)),
        (folder / "config.json", ("meta", "recipe", "loss", "gan_mode")),
    ):
        try:
            value: Any = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return None


def discriminator_is_conditional(disc: nn.Module, out_channels: int) -> bool:
    """Whether ``disc`` reads (input, image) side by side rather than the image alone."""
    config = getattr(disc, "config", {})
    return int(config.get("in_channels", out_channels)) != out_channels
