"""The quality gate: is a compressed generator a working model, or a broken one?

Every ``compress`` run ends with it, and ``benchmark`` and the report can call it on any model. The
student is scored against the teacher (and against the ground truth where the data is paired) on
held-out inputs, beside two references: copying the input (image-to-image tasks, when input and output
have the same channels) and the teacher itself. It fails when the student's output is not finite,
constant or nearly so (tiny per-image spread), the same image for every input, or, for
image-to-image tasks, no closer to the teacher than the input is. Without a teacher (a student
trained from scratch) the ground truth takes the teacher's place as the reference.

Example:
    >>> result = quality_gate(student, teacher, [x_batch], [y_batch])
    >>> result.passed, result.reasons
    (True, [])
    >>> print(result.text())
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .paired import l1, psnr, ssim

Model = Callable[..., torch.Tensor]
RELATIVE = 0.25  # a spread below min_* fails only when it is also under this fraction of the teacher's
MAX_PSNR = 100.0  # identical images: reported as 100 dB, not infinity (JSON has no infinity)


@dataclass
class GateResult:
    """The gate's verdict, its reasons, and the scores it is based on.

    ``scores`` maps ``"<output>_vs_<reference>"`` (outputs: student, copy_input, teacher; references:
    teacher, ground_truth) to ``{"psnr", "ssim", "l1"}``; ``checks`` holds the numbers of the
    finiteness, spread and diversity checks.
    """

    passed: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    images: int = 0

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) if self.reasons else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "images": self.images,
            "scores": self.scores,
            "checks": self.checks,
        }

    def text(self) -> str:
        """A few readable lines: the verdict, then PSNR / SSIM of each output against each reference."""
        head = f"quality gate: {'passed' if self.passed else 'FAILED: ' + str(self.reason)} ({self.images} images)"
        lines = [head]
        for key, s in self.scores.items():
            out, ref = key.split("_vs_")
            lines.append(
                f"  {out:<10} vs {ref:<12} PSNR {s['psnr']:6.2f} dB  SSIM {s['ssim']:.3f}  L1 {s['l1']:.4f}"
            )
        return "\n".join(lines)


def _batches(inputs: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)


def _device(model: Model) -> torch.device | None:
    params = getattr(model, "parameters", None)
    if params is None:
        return None
    first = next(iter(params()), None)
    return None if first is None else first.device


@torch.no_grad()
def _outputs(model: Model, inputs: list[torch.Tensor], extras: list[Mapping[str, Any]]) -> torch.Tensor:
    if hasattr(model, "eval"):
        model.eval()  # type: ignore[union-attr]
    device = _device(model)
    outs = []
    for x, kw in zip(inputs, extras):
        if device is not None:
            x = x.to(device)
            kw = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
        outs.append(model(x, **kw).float().cpu())
    return torch.cat(outs)


def _score(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    return {
        "psnr": float(psnr(out, ref).clamp(max=MAX_PSNR).mean()),
        "ssim": float(ssim(out, ref).mean()),
        "l1": float(l1(out, ref).mean()),
    }


def _spread(images: torch.Tensor) -> tuple[float, float]:
    """(mean per-image standard deviation, mean per-pixel standard deviation across images)."""
    per_image = float(images.flatten(1).std(dim=1).mean())
    across = float(images.std(dim=0).mean()) if images.shape[0] > 1 else math.nan
    return per_image, across


def quality_gate(
    student: Model,
    teacher: Model | None,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    targets: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    extras: Sequence[Mapping[str, Any]] | None = None,
    copy_input: bool | None = None,
    min_std: float = 0.02,
    min_spread: float = 0.01,
    copy_margin_db: float = 0.0,
) -> GateResult:
    """Score ``student`` against ``teacher`` (and ``targets``) on ``inputs`` and decide pass or fail.

    ``inputs`` / ``targets``: NCHW batches in [-1, 1] (one tensor or a list of batches); ``extras``:
    extra forward arguments per batch (MUNIT's ``style_image``). ``copy_input``: whether copying the
    input is a baseline the student must beat (default: when input and output channels match).
    The spread checks fail only where the teacher's output spreads at least four times more (a teacher
    that draws flat images is no reason to fail its student).

    ``teacher`` None (a student trained from scratch): no teacher row; the student and copying the
    input are scored against the ground truth, the copy-the-input check compares them there, and
    the spread checks are absolute. Without ground truth either, only the finite and spread checks run.
    """
    xs = _batches(inputs)
    extras_ = list(extras) if extras is not None else [{} for _ in xs]
    s_out = _outputs(student, xs, extras_)
    result = GateResult(passed=True, images=int(s_out.shape[0]))
    finite = bool(torch.isfinite(s_out).all())
    result.checks["finite"] = finite
    if not finite:
        result.reasons.append("the output is not finite (NaN or infinity)")
        result.passed = False
        return result
    t_out = _outputs(teacher, xs, extras_) if teacher is not None else None
    x = torch.cat([b.float().cpu() for b in xs])
    outputs = {"student": s_out} | ({"teacher": t_out} if t_out is not None else {})
    if copy_input is None:
        copy_input = x.shape[1:] == s_out.shape[1:]
    if copy_input:
        outputs["copy_input"] = x.clamp(-1, 1)
    refs = {"teacher": t_out} if t_out is not None else {}
    if targets is not None:
        refs["ground_truth"] = torch.cat([b.float().cpu() for b in _batches(targets)])
    # The copy-the-input check's reference: the teacher, else the ground truth, else none.
    copy_ref = next(iter(refs), None)
    for ref_name, ref in refs.items():
        for out_name, out in outputs.items():
            if out_name != ref_name:
                result.scores[f"{out_name}_vs_{ref_name}"] = _score(out, ref)
    _check_spread(result, s_out, t_out, min_std, min_spread)
    if copy_input and copy_ref is not None:
        ref_text = "the teacher" if copy_ref == "teacher" else "the ground truth"
        student_db = result.scores[f"student_vs_{copy_ref}"]["psnr"]
        copy_db = result.scores[f"copy_input_vs_{copy_ref}"]["psnr"]
        if student_db < copy_db + copy_margin_db:
            result.reasons.append(
                f"worse than copying the input: {student_db:.2f} dB against {ref_text}, copying the input "
                f"{copy_db:.2f} dB" + (f" (+{copy_margin_db} dB required)" if copy_margin_db else "")
            )
    result.passed = not result.reasons
    return result


def _check_spread(
    result: GateResult, s_out: torch.Tensor, t_out: torch.Tensor | None, min_std: float, min_spread: float
) -> None:
    s_std, s_across = _spread(s_out)
    # No teacher: nothing to excuse a flat output, so the absolute thresholds decide alone.
    t_std, t_across = _spread(t_out) if t_out is not None else (math.inf, math.inf)
    teacher_checks = (t_std, t_across) if t_out is not None else (None, None)  # JSON has no infinity
    result.checks.update(
        {
            "std": s_std,
            "teacher_std": teacher_checks[0],
            "spread": s_across,
            "teacher_spread": teacher_checks[1],
        }
    )
    if s_std < min_std and s_std < RELATIVE * t_std:
        result.reasons.append(
            f"the output is constant or nearly so (mean per-image std {s_std:.2g} < {min_std})"
        )
    elif s_across < min_spread and s_across < RELATIVE * t_across:
        result.reasons.append(
            f"the output is the same image for every input (mean std across inputs {s_across:.2g} < {min_spread})"
        )
