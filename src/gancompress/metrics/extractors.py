"""Feature extractors by name: every one maps [-1, 1] RGB NCHW images to (N, D) features.

Names: ``inception`` (the FID Inception-v3; local weights needed), ``vgg`` / ``vgg-hed`` /
``vgg-craft`` (packaged VGG16 weights), ``domain`` (the dataset's own domain feature space),
``domain:NAME`` (a shipped domain classifier), ``segmenter:NAME`` (a shipped segmenter's pooled
encoder features), or any ``nn.Module`` with that contract. Each has a ``name`` that every result
and every cached statistic carries, because FIDs from different extractors are not comparable.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError

EXTRACTOR_NAMES = ("inception", "vgg", "vgg-hed", "vgg-craft", "domain", "domain:NAME", "segmenter:NAME")
# dataset name → (extractor spec, the domains it was trained on). Fonts' classifier learnt both glyph
# faces and fashion's both polarities; labels2sat's segmenter saw only satellite tiles, which are
# domain B of maps (A is the ETOPO relief map) and the images labels2sat generates.
DOMAIN_EXTRACTOR_OF_DATASET = {
    "fonts": ("domain:fonts", "AB"),
    "fashion": ("domain:fashion", "AB"),
    "maps": ("segmenter:labels2sat", "B"),
    "labels2sat": ("segmenter:labels2sat", "B"),
}


def extractor_name(extractor: nn.Module) -> str:
    return str(getattr(extractor, "name", type(extractor).__name__))


def create_extractor(
    spec: str | nn.Module,
    *,
    dataset_info: dict[str, Any] | None = None,
    inception_weights: str | None = None,
    vgg_resize: int | None = 224,
    target_domain: str = "B",
) -> nn.Module:
    """The extractor ``spec`` names (see the module docstring), frozen and in eval mode.

    ``domain`` resolves through ``dataset_info["name"]`` and ``target_domain``, the domain ("A" or
    "B") being generated: a dataset's domain extractor exists only for the domains it was trained on.

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
    if spec.startswith("domain:"):
        from .domain import load_domain_extractor

        return load_domain_extractor(spec.split(":", 1)[1])
    if spec.startswith("segmenter:"):
        from .segmentation import SegmenterFeatures, load_segmenter

        return SegmenterFeatures(load_segmenter(spec.split(":", 1)[1])).eval()
    if spec == "domain":
        dataset = (dataset_info or {}).get("name")
        if dataset not in DOMAIN_EXTRACTOR_OF_DATASET:
            raise ConfigError(
                f"no domain extractor for dataset {dataset or '(unnamed folder)'}; shipped ones cover "
                f"{', '.join(DOMAIN_EXTRACTOR_OF_DATASET)}; use 'vgg' or 'inception' here"
            )
        resolved, domains = DOMAIN_EXTRACTOR_OF_DATASET[dataset]
        if target_domain not in domains:
            names = (dataset_info or {}).get("domains") or {}
            raise ConfigError(
                f"no domain extractor for domain {target_domain} of dataset {dataset} "
                f"({names.get(target_domain, 'unnamed')}): {resolved} covers domain {domains} only; "
                "use 'vgg' or 'inception' here"
            )
        return create_extractor(resolved)
    raise ConfigError(f"unknown feature extractor {spec!r}; known: {', '.join(EXTRACTOR_NAMES)}")
