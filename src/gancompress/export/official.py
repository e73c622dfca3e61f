"""Import official pytorch-CycleGAN-and-pix2pix generator checkpoints (``latest_net_G.pth``).

The official ``ResnetGenerator`` and ``UnetGenerator`` store their weights under positional
``nn.Sequential`` keys (``model.10.conv_block.5.weight``, ``model.model.1.model.3.model...``).
The importer reads the file with ``torch.load(weights_only=True)`` (no code is executed), infers the
options (ngf, blocks or levels, norm, dropout, channels) from the keys and shapes, maps every key to
the gancompress layout, and loads strictly: a mismatch lists the missing and unexpected keys.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..models import Generator, create_generator
from .saved import load_state_strict

_NORM_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def read_pth(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` state dict without executing code (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused — it is not a plain tensor checkpoint and loading it would execute code ({exc})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(f"{path}: expected a state dict (a mapping of names to tensors)")
    # DataParallel checkpoints prefix every key with "module."
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _drop_instance_norm_stats(
    state: dict[str, torch.Tensor], norm_prefixes: list[str]
) -> dict[str, torch.Tensor]:
    """Old PyTorch saved running stats for InstanceNorm; the official code deletes them on load too."""
    out = dict(state)
    for prefix in norm_prefixes:
        for suffix in ("running_mean", "running_var", "num_batches_tracked"):
            out.pop(f"{prefix}.{suffix}", None)
    return out


def resnet_key_map(num_blocks: int, dropout: bool) -> dict[str, str]:
    """Official ``ResnetGenerator`` module prefix → gancompress module prefix."""
    m = {
        "model.1": "stem",
        "model.2": "stem_norm",
        "model.4": "down1",
        "model.5": "down1_norm",
        "model.7": "down2",
        "model.8": "down2_norm",
    }
    conv2, norm2 = (6, 7) if dropout else (5, 6)
    for i in range(num_blocks):
        b = f"model.{10 + i}.conv_block"
        m[f"{b}.1"] = f"blocks.{i}.conv1"
        m[f"{b}.2"] = f"blocks.{i}.norm1"
        m[f"{b}.{conv2}"] = f"blocks.{i}.conv2"
        m[f"{b}.{norm2}"] = f"blocks.{i}.norm2"
    base = 10 + num_blocks
    m.update(
        {
            f"model.{base}": "up1",
            f"model.{base + 1}": "up1_norm",
            f"model.{base + 3}": "up2",
            f"model.{base + 4}": "up2_norm",
            f"model.{base + 7}": "head",
        }
    )
    return m


def unet_key_map(num_downs: int) -> dict[str, str]:
    """Official ``UnetGenerator`` (nested skip blocks) module prefix → gancompress module prefix."""
    m = {"model.model.0": "down.0", "model.model.3": "up.0"}
    prefix = "model.model.1.model"
    for k in range(2, num_downs + 1):  # block k holds level k-1
        i = k - 1
        if k < num_downs:
            m.update(
                {
                    f"{prefix}.1": f"down.{i}",
                    f"{prefix}.2": f"down_norm.{i}",
                    f"{prefix}.5": f"up.{i}",
                    f"{prefix}.6": f"up_norm.{i}",
                }
            )
            prefix = f"{prefix}.3.model"
        else:  # innermost: no down norm, no submodule
            m.update({f"{prefix}.1": f"down.{i}", f"{prefix}.3": f"up.{i}", f"{prefix}.4": f"up_norm.{i}"})
    return m


def _remap(state: dict[str, torch.Tensor], key_map: dict[str, str], source: str) -> dict[str, torch.Tensor]:
    out, unmapped = {}, []
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in key_map:
            out[f"{key_map[prefix]}.{leaf}"] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise CheckpointError(
            f"{source}: keys that do not belong to the official layout: {', '.join(sorted(unmapped)[:20])}"
        )
    return out


def detect_official_family(state: dict[str, torch.Tensor]) -> str:
    if "model.model.0.weight" in state:
        return "unet"
    if "model.1.weight" in state and any(re.match(r"model\.\d+\.conv_block\.", k) for k in state):
        return "resnet"
    raise CheckpointError(
        "not an official ResnetGenerator or UnetGenerator state dict "
        "(expected keys like 'model.1.weight' + 'model.10.conv_block.1.weight', or 'model.model.0.weight')"
    )


def import_official_generator(
    path: str | os.PathLike | dict[str, torch.Tensor], family: str = "auto", **overrides: Any
) -> Generator:
    """Build a gancompress generator from an official pix2pix/CycleGAN ``net_G`` state dict.

    ``path`` is a ``.pth`` file (read with ``weights_only=True``) or an already loaded state dict.
    Options are inferred from the weights; ``overrides`` fix any that cannot be (e.g. ``dropout``).

    Example:
        >>> g = import_official_generator("checkpoints/horse2zebra/latest_net_G.pth")
    """
    source = str(path) if not isinstance(path, dict) else "state dict"
    state = (
        read_pth(path)
        if not isinstance(path, dict)
        else {k.removeprefix("module."): v for k, v in path.items()}
    )
    if family == "auto":
        family = detect_official_family(state)
    if family == "resnet":
        options, key_map = _resnet_options(state)
    elif family == "unet":
        options, key_map = _unet_options(state)
    else:
        raise CheckpointError(f"official checkpoints exist for 'resnet' and 'unet', not {family!r}")
    options.update(overrides)
    generator = create_generator(family, **options)
    mapped = _remap(state, key_map, source)
    if options.get("norm") == "instance":
        mapped = _drop_instance_norm_stats(mapped, [k.rpartition(".")[0] for k in mapped if "norm" in k])
    load_state_strict(generator, mapped, source)
    return generator.eval()


def _resnet_options(state: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, str]]:
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    num_blocks = len(blocks)
    dropout = any(re.match(r"model\.\d+\.conv_block\.6\.weight", k) for k in state) and not any(
        re.match(r"model\.\d+\.conv_block\.5\.weight", k) for k in state
    )
    norm = "batch" if "model.2.weight" in state else "instance"
    key_map = resnet_key_map(num_blocks, dropout)
    head = key_map and f"model.{10 + num_blocks + 7}.weight"
    if head not in state:
        raise CheckpointError(f"official ResnetGenerator with {num_blocks} blocks should have {head!r}")
    stem = state["model.1.weight"]
    options = dict(
        in_channels=stem.shape[1],
        out_channels=state[head].shape[0],
        base_width=stem.shape[0],
        num_blocks=num_blocks,
        norm=norm,
        dropout=0.5 if dropout else 0.0,
    )
    return options, key_map


def _unet_options(state: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, str]]:
    # "model.model." is block 1; each further ".model." is one block (one level) deeper
    num_downs = max(k.count(".model.") for k in state if k.startswith("model.model."))
    first = state["model.model.0.weight"]
    norm = "batch" if "model.model.1.model.2.weight" in state else "instance"
    options = dict(
        in_channels=first.shape[1],
        out_channels=state["model.model.3.weight"].shape[1],
        base_width=first.shape[0],
        num_downs=num_downs,
        norm=norm,
    )
    return options, unet_key_map(num_downs)
