"""The report's figures, laid out so that no two labels overlap.

Each figure builder returns a matplotlib figure (or None when it would carry no information) so the
layout can be checked without saving it: :func:`text_overlaps` lists the pairs of visible texts
(point labels, tick labels, titles, legend entries) whose boxes intersect. Point labels are placed
greedily: each tries offsets around its point, nearest first, and takes the first whose box meets no
text placed before it (tick labels and titles included), joined to its point by a short leader line
(so that two near-coincident points cannot seem to trade labels). Marker shape tells the precision (circle fp32, square int8, with a legend); colour the
model (quality plots) or the runtime (latency plot).

Example:
    >>> fig = quality_figure(results)
    >>> text_overlaps(fig)
    []
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import torch

MARKERS = {"fp32": "o", "int8": "s"}
# offsets (points) around a point, nearest first; labels farther out get a leader line
_RADII = (7, 13, 20, 30, 42, 56, 72, 90)
_DIRECTIONS = (
    (1, 1),
    (1, -1),
    (-1, 1),
    (-1, -1),
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (2, 1),
    (-2, 1),
    (2, -1),
    (-2, -1),
)


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _renderer(fig):
    return fig.canvas.get_renderer()


def _drawn_tick_labels(ax) -> tuple[list, set]:
    """The tick labels ``ax`` draws (those inside the view), and every tick label it holds."""
    drawn, held = [], set()
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        span = (hi - lo) or 1.0
        for ticks in (axis.get_major_ticks(), axis.get_minor_ticks()):
            for tick in ticks:
                held.update((tick.label1, tick.label2))
                if lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    drawn += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return drawn, held


def visible_texts(fig) -> list:
    """Every drawn, non-empty text artist of ``fig`` (tick labels, titles, annotations, legends)."""
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels exist only once drawn
    texts, held = [], set()
    for ax in fig.axes:
        if ax.get_visible():
            drawn, ax_held = _drawn_tick_labels(ax)
            texts += drawn
            held |= ax_held
        else:
            held |= set(ax.findobj(Text))
    # tick labels outside the view keep stale positions but are not drawn: only the drawn ones count
    texts += [t for t in fig.findobj(Text) if t not in held and t.get_visible()]
    return [t for t in dict.fromkeys(texts) if t.get_text().strip()]


def text_box(text, renderer):
    """The box of a text's glyphs alone (an annotation's own extent also spans its leader line)."""
    from matplotlib.text import Text

    return Text.get_window_extent(text, renderer)


def text_overlaps(fig, pad: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of visible texts of ``fig`` whose boxes overlap (by more than ``pad`` pixels)."""
    renderer = _renderer(fig)
    boxes = []
    for t in visible_texts(fig):
        bb = text_box(t, renderer)
        if bb.width > 0 and bb.height > 0:
            boxes.append((t.get_text(), bb.expanded(1, 1).padded(-pad)))
    hits = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if boxes[i][1].overlaps(boxes[j][1]):
                hits.append((boxes[i][0], boxes[j][0]))
    return hits


def _fixed_boxes(fig) -> list:
    renderer = _renderer(fig)
    return [text_box(t, renderer) for t in visible_texts(fig)]


def _align(dx: int, dy: int) -> dict[str, str]:
    return {
        "ha": "left" if dx > 0 else "right" if dx < 0 else "center",
        "va": "bottom" if dy > 0 else "top" if dy < 0 else "center",
    }


def place_labels(ax, points: Sequence[tuple[float, float, str]], taken: list, fontsize: float = 7) -> None:
    """Annotate each ``(x, y, text)`` of ``ax`` where its box meets none in ``taken`` (updated).

    The first offset (nearest first) whose box clashes with nothing placed and stays inside the axes
    wins; failing that, the one with the fewest clashes. A leader line joins each label to its point.
    """
    from matplotlib.transforms import Bbox

    renderer = _renderer(ax.figure)
    inside = ax.get_window_extent(renderer)
    markers = [  # labels keep off the markers too, though a text clash weighs more
        Bbox.from_extents(px - 4, py - 4, px + 4, py + 4)
        for coll in ax.collections
        for px, py in coll.get_offset_transform().transform(coll.get_offsets())
    ]
    for x, y, text in points:
        best = None  # (clashes, radius, dx, dy, box)
        for r in _RADII:
            for dx, dy in _DIRECTIONS:
                probe = ax.annotate(
                    text,
                    (x, y),
                    xytext=(dx * r, dy * r),
                    textcoords="offset points",
                    fontsize=fontsize,
                    **_align(dx, dy),
                )
                box = probe.get_window_extent(renderer)
                probe.remove()
                clashes = 3 * sum(box.overlaps(o) for o in taken) + sum(box.overlaps(m) for m in markers)
                # outside the axes is allowed (the saved canvas grows) but inside is preferred
                outside = (not inside.contains(box.x0, box.y0)) + (not inside.contains(box.x1, box.y1))
                clashes += 0.2 * outside
                if best is None or clashes < best[0]:
                    best = (clashes, r, dx, dy, box)
            if best[0] == 0:
                break
        _, r, dx, dy, box = best
        leader = {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 0, "shrinkB": 2.5}
        ax.annotate(
            text,
            (x, y),
            xytext=(dx * r, dy * r),
            textcoords="offset points",
            fontsize=fontsize,
            arrowprops=leader,  # always: near-coincident points must not trade labels
            **_align(dx, dy),
        )
        taken.append(box)


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _ms(v: float) -> str:
    return f"{v:.3g}"


def log_ticks(ax, axis: str, fmt: Callable[[float], str]) -> None:
    """1-2-5 ticks on a log axis, labelled by ``fmt``, with no minor labels (they overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v)))
    target.set_minor_formatter(NullFormatter())


def _drawn_labels(ax, axis: str) -> list:
    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(target.get_view_interval())
    span = (hi - lo) or 1.0
    return [
        t.label1
        for t in target.get_major_ticks()
        if lo - 1e-9 * span <= t.get_loc() <= hi + 1e-9 * span
        and t.label1.get_visible()
        and t.label1.get_text()
    ]


def thin_ticks(fig, axes: Sequence[tuple[Any, str]]) -> None:
    """Keep every other tick of each ``(ax, "x" or "y")`` whose tick labels overlap, until none do
    (one draw of the figure per round, for all axes at once)."""
    for _ in range(4):
        fig.canvas.draw()
        renderer = _renderer(fig)
        crowded = []
        for ax, axis in axes:
            boxes = [text_box(t, renderer) for t in _drawn_labels(ax, axis)]
            if any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]):
                crowded.append((ax, axis))
        if not crowded:
            return
        for ax, axis in crowded:
            lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
            locs = ax.get_xticks() if axis == "x" else ax.get_yticks()
            (ax.set_xticks if axis == "x" else ax.set_yticks)([v for v in locs if lo <= v <= hi][::2])


def _precision_handles() -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="", marker=m, color="0.35", label=f"{p} model") for p, m in MARKERS.items()]


def _precision_legend(fig_or_ax, **kwargs):
    return fig_or_ax.legend(handles=_precision_handles(), fontsize=7, **kwargs)


def _base_name(row: dict[str, Any]) -> str:
    name = row["name"]
    return name[: -len(" int8")] if row.get("precision") == "int8" and name.endswith(" int8") else name


def informative(values: Sequence[float]) -> bool:
    """True when ``values`` hold at least two different numbers (to 4 significant digits)."""
    finite = {f"{v:.4g}" for v in values if v is not None and math.isfinite(v)}
    return len(finite) >= 2


def quality_figure(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], title: Callable[[str], str]
) -> tuple[Any, list[str]] | None:
    """One panel per metric of ``metrics`` (quality against paper MACs, log x) that differs between
    ``rows``; returns (figure, the metrics plotted), or None when no metric carries information."""
    shown = [m for m in metrics if informative([r["quality"].get(m) for r in rows])]
    if not shown:
        return None
    plt = pyplot()
    ncols = min(3, len(shown))
    nrows = -(-len(shown) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.95 * ncols, 3.3 * nrows + 0.5), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    names = list(dict.fromkeys(_base_name(r) for r in rows))
    colours = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    per_axis = []
    for ax, m in zip(axes.flat, shown):
        pts = []
        for r in rows:
            v = r["quality"].get(m)
            if v is None or not math.isfinite(v):
                continue
            ax.scatter(
                r["macs_paper"],
                v,
                marker=MARKERS.get(r.get("precision"), "o"),
                s=28,
                color=colours[_base_name(r)],
                zorder=3,
            )
            pts.append((r["macs_paper"], v, r["name"]))
        ax.set_xscale("log")
        log_ticks(ax, "x", _count)
        ax.margins(x=0.15, y=0.2)
        ax.set_xlabel("MACs (paper convention)", fontsize=8)
        ax.set_title("\n".join(textwrap.wrap(title(m), 46)), fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        per_axis.append((ax, pts))
    _precision_legend(fig, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    thin_ticks(fig, [(ax, "x") for ax, _ in per_axis])
    taken = _fixed_boxes(fig)
    for ax, pts in per_axis:
        place_labels(ax, pts, taken)
    return fig, shown


def latency_figure(
    rows: Sequence[dict[str, Any]],
    runtimes: Sequence[str],
    floor: dict[str, Any] | None,
    title: str,
    runtime_title: Callable[[str], str],
):
    """Median latency in each runtime against paper MACs (log-log), one line per runtime, with the
    per-inference floor of each runtime as a dotted line; None when nothing was timed."""
    plt = pyplot()
    series = []
    for rt in runtimes:
        pts = sorted(
            (r["macs_paper"], r["latency_ms"][rt], r["name"], r) for r in rows if r["latency_ms"].get(rt)
        )
        if pts:
            series.append((rt, pts))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8.2, 4.8))
    slowest: dict[str, tuple[float, float, str]] = {}
    for i, (rt, pts) in enumerate(series):
        colour = plt.get_cmap("tab10")(i % 10)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=colour, lw=1, alpha=0.7)
        for x, y, _, r in pts:
            ax.scatter(x, y, marker=MARKERS.get(r.get("precision"), "o"), color=colour, s=26, zorder=3)
        ax.plot([], [], "-", color=colour, label=runtime_title(rt))
        floor_ms = ((floor or {}).get("latency_ms") or {}).get(rt)
        if floor_ms:
            ax.axhline(floor_ms, ls=":", color=colour, lw=1.2, label=f"floor, {runtime_title(rt)}")
        for x, y, name, _ in pts:  # one label per model, at its slowest point: fewer, looser labels
            if y >= slowest.get(name, (0, 0, 0))[1]:
                slowest[name] = (x, y, name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_ticks(ax, "x", _count)
    log_ticks(ax, "y", _ms)
    ax.margins(x=0.15, y=0.25)
    ax.set_xlabel("MACs (paper convention)", fontsize=8)
    ax.set_ylabel("median latency (ms)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=7.5)
    ax.grid(alpha=0.3, which="both")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=handles + _precision_handles(),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    thin_ticks(fig, [(ax, "x"), (ax, "y")])
    place_labels(ax, list(slowest.values()), _fixed_boxes(fig), fontsize=6.5)
    return fig


def _to_image(t: torch.Tensor):
    import numpy as np

    t = t.detach().float().cpu()
    if t.shape[0] != 3:  # a label map: show its argmax as gray levels
        t = (t.argmax(0, keepdim=True).float() / max(1, t.shape[0] - 1)).repeat(3, 1, 1) * 2 - 1
    return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy().astype(np.uint8)


def samples_figure(
    samples: dict[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    failed: Sequence[str] = (),
):
    """A grid: one test input per row; columns input, every model's output, the ground truth.
    Columns of failed models are titled so, in red."""
    plt = pyplot()
    cols = (
        [("input", inputs)]
        + list(samples.items())
        + ([("ground truth", targets)] if targets is not None else [])
    )
    n = inputs.shape[0]
    fig, axes = plt.subplots(n, len(cols), figsize=(1.5 * len(cols), 1.5 * n + 0.6), squeeze=False)
    for j, (title, images) in enumerate(cols):
        bad = title in failed
        for i in range(n):
            ax = axes[i][j]
            ax.imshow(_to_image(images[i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                text = "\n".join(textwrap.wrap(title, 14, break_on_hyphens=True)) + (
                    "\n(failed)" if bad else ""
                )
                ax.set_title(text, fontsize=7, color="#b00020" if bad else "black")
    fig.tight_layout()
    return fig


def save(fig, path) -> None:
    """Write ``fig`` as a PNG (the canvas grown to hold every label) and close it."""
    plt = pyplot()
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
