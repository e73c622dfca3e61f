"""Controlled pruning: from latent magnitudes to channel masks, until a MACs target is reached.

After every proximal step the controller recomputes each width group's keep-mask: a channel stays
while ``|z_i| > threshold · max_j |z_j|`` over the group's kept channels (the DHP mask rule, relative
to the largest latent). Counts are rounded up to the group's multiplier (ArchSpec widths count in
units of ``base_width``) and never fall below the group's minimum width. Masks only shrink, so the
network's MACs only fall; the first time they are at or under the target, the units removed by
that last update are given back greedily (largest latent first) while the MACs stay under the
target, pruning stops for good, and the rest of the stage trains the pruned network.

When the stage ends before the target is met, :meth:`PruneController.finish` removes the units with
the smallest relative latents one at a time until it is. Every decision depends only on the
latents, the masks and the MACs, so a resumed run takes the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import BudgetError, ConfigError
from .hypernet import HyperGenerator, soft_threshold_


class PruneController(nn.Module):
    """Decides the masks of a :class:`HyperGenerator` and when pruning stops.

    Its state (stopped or not, the step it stopped at, units removed by force) lives in buffers, so it
    is saved with the task's checkpoint.

    Example:
        >>> ctl = PruneController(hyper, macs_fn, target_macs=2e8, threshold=0.05, regularization=1.0)
        >>> ctl.step(hyper, lr=1e-3, step=10)      # after the optimiser step
        >>> ctl.report(hyper)["reached_macs"]
    """

    def __init__(
        self,
        hyper: HyperGenerator,
        macs_fn: Callable[[ArchSpec], int],
        target_macs: float,
        *,
        threshold: float = 0.05,
        regularization: float = 1.0,
        min_widths: Mapping[str, int] | None = None,
        groups: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= threshold < 1:
            raise ConfigError(f"prune.threshold must be in [0, 1), got {threshold}")
        if regularization < 0:
            raise ConfigError(f"prune.regularization must be non-negative, got {regularization}")
        if target_macs <= 0:
            raise ConfigError(f"the MACs target must be positive, got {target_macs}")
        known = hyper.groups
        groups = tuple(known if groups is None else groups)
        unknown = sorted(set(groups) - set(known)) + sorted(set(min_widths or {}) - set(known))
        if unknown:
            raise ConfigError(f"prune: unknown width group(s) {unknown}; known: {list(known)}")
        self.macs_fn = macs_fn
        self.target_macs = float(target_macs)
        self.threshold = threshold
        self.regularization = regularization
        self.prune_groups = groups
        full = hyper.base.arch.widths
        self.min_widths = {}
        for g, w in zip(known, full):
            mw = int((min_widths or {}).get(g, 1))
            if mw < 1:
                raise ConfigError(f"prune.min_widths.{g} must be at least 1, got {mw}")
            self.min_widths[g] = min(mw, w)
        self.register_buffer("stopped", torch.zeros((), dtype=torch.bool))
        self.register_buffer("stop_step", torch.full((), -1, dtype=torch.long))
        self.register_buffer("forced_units", torch.zeros((), dtype=torch.long))
        self._check_feasible(hyper)

    # -- helpers -----------------------------------------------------------------------------------
    def _floor_masks(self, hyper: HyperGenerator) -> dict[str, torch.Tensor]:
        """Masks at the minimum widths (the groups not pruned keep everything)."""
        out = {}
        for g in hyper.groups:
            mask = torch.zeros_like(hyper.mask(g))
            n = self.min_widths[g] * hyper.multipliers[g] if g in self.prune_groups else mask.numel()
            mask[:n] = True
            out[g] = mask
        return out

    def _check_feasible(self, hyper: HyperGenerator) -> None:
        floor = self.macs_fn(hyper.pruned_arch(self._floor_masks(hyper)))
        if floor > self.target_macs:
            raise BudgetError(
                f"MACs target {self.target_macs:.4g} is below {floor:.4g}, the MACs at the minimum widths "
                f"(prune.min_widths / prune.groups); raise the target or lower the minimum widths"
            )

    @staticmethod
    def _scores(hyper: HyperGenerator, group: str) -> torch.Tensor:
        """|z| of the kept channels, −inf for removed ones."""
        z = hyper.latents[group].detach().abs()
        return torch.where(hyper.mask(group), z, torch.full_like(z, -math.inf))

    @staticmethod
    def _top(scores: torch.Tensor, n: int) -> torch.Tensor:
        # A stable sort: ties go to the lower channel index, so decisions are reproducible.
        order = torch.sort(-scores, stable=True).indices[:n]
        mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
        mask[order] = True
        return mask

    def macs(self, hyper: HyperGenerator, masks: Mapping[str, torch.Tensor] | None = None) -> int:
        return int(self.macs_fn(hyper.pruned_arch(masks)))

    # -- the per-step rule -------------------------------------------------------------------------
    def proposed_masks(self, hyper: HyperGenerator) -> dict[str, torch.Tensor]:
        """The masks the threshold rule gives now (never larger than the current ones)."""
        out = {}
        for g in hyper.groups:
            current = hyper.mask(g)
            if g not in self.prune_groups:
                out[g] = current.clone()
                continue
            m = hyper.multipliers[g]
            scores = self._scores(hyper, g)
            alive = int(current.sum())
            top = float(scores.max())
            above = int((scores > self.threshold * top).sum()) if top > 0 else 0
            n = max(math.ceil(above / m) * m, self.min_widths[g] * m)
            out[g] = self._top(scores, min(n, alive))
        return out

    @torch.no_grad()
    def step(self, hyper: HyperGenerator, lr: float, step: int) -> dict[str, float]:
        """Proximal step on the latents (soft threshold by ``lr · regularization``), then new masks.

        Does nothing once pruning has stopped. Returns numbers for the training log.
        """
        if bool(self.stopped):
            return {}
        for g in self.prune_groups:
            soft_threshold_(hyper.latents[g], lr * self.regularization)
        before = {g: hyper.mask(g).clone() for g in hyper.groups}
        masks = self.proposed_masks(hyper)
        macs = self.macs(hyper, masks)
        if macs <= self.target_macs:
            masks = self._give_back(hyper, before, masks)
            self.stopped.fill_(True)
            self.stop_step.fill_(step)
        for g, mask in masks.items():
            hyper.set_mask(g, mask)
        return {"macs": float(self.macs(hyper)), "macs_ratio_to_target": self.macs(hyper) / self.target_macs}

    def _give_back(
        self,
        hyper: HyperGenerator,
        before: Mapping[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Re-add units removed by the last update, best first, while the MACs stay under the target."""
        masks = {g: m.clone() for g, m in masks.items()}
        candidates = []
        for g in hyper.groups:
            removed = before[g] & ~masks[g]
            if not removed.any():
                continue
            z = hyper.latents[g].detach().abs()
            top = float(torch.where(before[g], z, torch.zeros_like(z)).max()) or 1.0
            idx = torch.nonzero(removed).flatten()
            idx = idx[torch.sort(-z[idx], stable=True).indices]
            m = hyper.multipliers[g]
            for start in range(0, idx.numel() - idx.numel() % m, m):
                unit = idx[start : start + m]
                candidates.append((float(z[unit].mean()) / top, g, unit))
        # Within a group units come best first; across groups by relative latent magnitude.
        candidates.sort(key=lambda c: (-c[0], hyper.groups.index(c[1])))
        for _, g, unit in candidates:
            trial = dict(masks)
            trial[g] = masks[g].clone()
            trial[g][unit] = True
            if self.macs(hyper, trial) <= self.target_macs:
                masks = trial
        return masks

    @torch.no_grad()
    def finish(self, hyper: HyperGenerator) -> None:
        """Reach the target by removing the units of smallest relative latent, when training did not."""
        if bool(self.stopped):
            return
        forced = 0
        while self.macs(hyper) > self.target_macs:
            best = None
            for g in self.prune_groups:
                m = hyper.multipliers[g]
                alive = int(hyper.mask(g).sum())
                if alive // m <= self.min_widths[g]:
                    continue
                scores = self._scores(hyper, g)
                top = float(scores.max()) or 1.0
                order = torch.sort(scores, stable=True).indices  # weakest first (removed ones at −inf)
                unit = order[scores.numel() - alive : scores.numel() - alive + m]
                rel = float(scores[unit].mean()) / top
                if best is None or rel < best[0]:
                    best = (rel, g, unit)
            if best is None:  # _check_feasible makes this unreachable; kept as a guard
                raise BudgetError(
                    f"cannot reach the MACs target {self.target_macs:.4g} at the minimum widths"
                )
            _, g, unit = best
            mask = hyper.mask(g).clone()
            mask[unit] = False
            hyper.set_mask(g, mask)
            forced += 1
        self.forced_units.fill_(forced)
        self.stopped.fill_(True)

    def report(self, hyper: HyperGenerator) -> dict[str, Any]:
        """Target against reached MACs, and how pruning ended."""
        reached = self.macs(hyper)
        return {
            "target_macs": self.target_macs,
            "reached_macs": reached,
            "reached_over_target": reached / self.target_macs,
            "under_target": reached <= self.target_macs,
            "stopped": bool(self.stopped),
            "stop_step": int(self.stop_step),
            "forced_units": int(self.forced_units),
            "arch": str(hyper.pruned_arch()),
            "threshold": self.threshold,
            "regularization": self.regularization,
            "min_widths": dict(self.min_widths),
        }
