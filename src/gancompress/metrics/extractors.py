"""Feature extractors by name: every one maps [-1, 1] RGB NCHW images to (N, D) features.

Names: ``inception`` (the FID Inception-v3; local weights needed), ``vgg`` / ``vgg-hed`` /
``vgg-craft`` (packaged VGG16 weights), ``domain`` (the dataset's own domain classifier) or
``domain:NAME``, or any ``nn.Module`` with that contract. Each has a ``name`` that every result
and every cached statistic carries, because FIDs from different extractors are not comparable.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError

EXTRACTOR_NAMES = ("inception", "vgg", "vgg-hed", "vgg-craft", "domain", "domain:NAME")
DOMAIN_EXTRACTOR_OF_DATASET = {"fonts": "fonts", "fashion": "fashion"}


def extractor_name(extractor: nn.Module) -> str:
    return str(getattr(extractor, "name", type(extractor).__name__))


def create_extractor(
    spec: str | nn.Module,
    *,
    dataset_info: dict[str, Any] | None = None,
    inception_weights: str | None = None,
    vgg_resize: int | None = 224,
) -> nn.Module:
    """The extractor ``spec`` names (see the module docstring), frozen and in eval mode.

    Example:
        >>> create_extractor("vgg").name        # 'vgg16-hed/relu5_2-gap@224'
    """
    if isinstance(spec, nn.Module):
        if not hasattr(spec, "num_features"):
            raise ConfigError(f"custom extractor {type(spec).__name__} needs a num_features attribute")
        return spec.eval()
    if spec == "inception":
        from .inception import load_fid_inception

        return load_fid_inception(inception_weights)
    if spec in ("vgg", "vgg-hed", "vgg-craft"):
        from .vgg import VGGFeatureExtractor

        source = {"vgg": "auto", "vgg-hed": "hed", "vgg-craft": "craft"}[spec]
        return VGGFeatureExtractor(source, resize=vgg_resize).eval()
    if spec == "domain" or spec.startswith("domain:"):
        from .domain import load_domain_extractor

        if spec.startswith("domain:"):
            return load_domain_extractor(spec.split(":", 1)[1])
        dataset = (dataset_info or {}).get("name")
        if dataset not in DOMAIN_EXTRACTOR_OF_DATASET:
            raise ConfigError(
                f"no domain extractor for dataset {dataset or '(unnamed folder)'}; shipped ones cover "
                f"{', '.join(DOMAIN_EXTRACTOR_OF_DATASET)}; use 'vgg' or 'inception' here"
            )
        return load_domain_extractor(DOMAIN_EXTRACTOR_OF_DATASET[dataset])
    raise ConfigError(f"unknown feature extractor {spec!r}; known: {', '.join(EXTRACTOR_NAMES)}")
