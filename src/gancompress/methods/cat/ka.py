"""Kernel alignment (KA), CAT's similarity of two feature maps of any channel counts.

With the batch's features flattened to rows, ``X ∈ R^{n×p}`` (student) and ``Y ∈ R^{n×q}`` (teacher),

    KA(X, Y) = ⟨X Xᵀ, Y Yᵀ⟩_F / (‖X Xᵀ‖_F ‖Y Yᵀ‖_F)

(snap-research/CAT ``utils/common.py`` ``KA``: the n×n Gram matrices of the batch, not centred).
It compares how the samples of a batch relate to each other, so features of different widths need
no 1×1 adapter; it is 1 for identical features and does not change when either side is rotated
(``X → X Q``, Q orthogonal) or scaled. The student is trained on ``−KA`` at each feature point.
"""

from __future__ import annotations

import torch


def kernel_alignment(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KA of two batches of features with the same number of samples (dim 0); a scalar in [0, 1].

    Example:
        >>> kernel_alignment(torch.randn(4, 8, 5, 5), torch.randn(4, 3, 5, 5)).item() <= 1
        True
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"kernel alignment needs the same batch on both sides, got {x.shape[0]} and {y.shape[0]}"
        )
    xf = x.float().reshape(x.shape[0], -1)
    yf = y.float().reshape(y.shape[0], -1)
    kx = xf @ xf.T
    ky = yf @ yf.T
    # the two norms apart (not the root of their squares' product), so large features cannot overflow
    denom = (torch.linalg.norm(kx) * torch.linalg.norm(ky)).clamp_min(1e-30)
    return (kx * ky).sum() / denom
