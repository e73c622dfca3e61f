"""Building blocks only: elastic conv/convT/linear/norms, separable conv, SPADE and AdaIN."""

from .elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLayerNorm2d,
    ElasticLinear,
    ElasticSeparableConv2d,
)
from .norms import NORMS, create_norm, norm_has_bias

__all__ = [
    "NORMS",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticConvTranspose2d",
    "ElasticInstanceNorm2d",
    "ElasticLayerNorm2d",
    "ElasticLinear",
    "ElasticSeparableConv2d",
    "create_norm",
    "norm_has_bias",
]
