"""Domain extractors: small classifiers trained on a built-in dataset's real images, shipped as assets.

Their predictions measure content preservation on generated images (the role a segmentation
network's mIoU plays for Cityscapes) and their penultimate features give a "domain FID" space.
Files: ``gancompress/assets/extractors/NAME.safetensors`` (float16 weights) + ``NAME.json`` (the
architecture, the classes, the data it was trained on, its accuracy on real held-out images).
They are made by ``scripts/train_domain_extractors.py``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

ARCH = "glyphnet-v1"


class DomainClassifier(nn.Module):
    """Grayscale CNN: three conv stages, global pooling, a ``feature_dim`` embedding, and one or more heads.

    Input: RGB images in [-1, 1] of any size (converted to gray and resized to ``in_size``).
    ``heads`` maps a head name (e.g. "char", "font", "class") to its number of classes.
    """

    def __init__(
        self, in_size: int, widths: tuple[int, int, int], feature_dim: int, heads: dict[str, int]
    ) -> None:
        super().__init__()
        self.in_size = in_size
        layers: list[nn.Module] = []
        in_ch = 1
        for w in widths:
            layers += [
                nn.Conv2d(in_ch, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_ch = w
        self.body = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Linear(in_ch, feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, n) for name, n in heads.items()})
        self.num_features = feature_dim

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.mean(dim=1, keepdim=True) if images.shape[1] == 3 else images
        if x.shape[-1] != self.in_size or x.shape[-2] != self.in_size:
            x = F.interpolate(
                x, size=(self.in_size, self.in_size), mode="bilinear", align_corners=False, antialias=True
            )
        return x

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding, (N, feature_dim): the domain-FID feature space."""
        return self.embed(self.body(self.prepare(images)).mean(dim=(2, 3)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.features(images)
        return {name: head(feats) for name, head in self.heads.items()}


class DomainExtractor(nn.Module):
    """A loaded domain classifier with its metadata: ``forward`` gives features, ``predict`` class logits."""

    def __init__(self, model: DomainClassifier, info: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.info = info
        self.num_features = model.num_features
        self.classes: list[Any] = info["classes"]

    @property
    def name(self) -> str:
        return f"domain/{self.info['name']}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images)

    def predict(self, images: torch.Tensor, head: str | None = None) -> torch.Tensor:
        return self.model(images)[head or self.info["content_head"]]


def assets_dir() -> Path:
    return Path(str(resources.files("gancompress") / "assets" / "extractors"))


def list_domain_extractors() -> list[str]:
    return sorted(p.stem for p in assets_dir().glob("*.json")) if assets_dir().is_dir() else []


def build_classifier(arch: dict[str, Any]) -> DomainClassifier:
    if arch.get("name") != ARCH:
        raise CheckpointError(f"unknown domain classifier arch {arch.get('name')!r} (known: {ARCH})")
    return DomainClassifier(arch["in_size"], tuple(arch["widths"]), arch["feature_dim"], dict(arch["heads"]))


def load_domain_extractor(name_or_path: str | Path) -> DomainExtractor:
    """A shipped extractor by name ("fonts", "fashion") or a ``.json`` path beside its ``.safetensors``.

    Example:
        >>> ext = load_domain_extractor("fonts"); ext.info["accuracy"]
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(name_or_path)
    meta = path if path.suffix == ".json" else assets_dir() / f"{name_or_path}.json"
    if not meta.is_file():
        known = ", ".join(list_domain_extractors()) or "(none shipped)"
        raise CheckpointError(f"no domain extractor {name_or_path!r} ({meta} does not exist); known: {known}")
    try:
        info = json.loads(meta.read_text())
        model = build_classifier(info["arch"])
        state = {k: v.float() for k, v in load_file(str(meta.with_suffix(".safetensors"))).items()}
        model.load_state_dict(state)
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot load domain extractor {meta}: {exc}") from exc
    except CheckpointError as exc:  # from the arch check: add the file it came from
        raise CheckpointError(f"cannot load domain extractor {meta}: {exc}") from exc
    return DomainExtractor(model.eval().requires_grad_(False), info)
