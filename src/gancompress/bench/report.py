"""The benchmark report: a markdown table, plots and one self-contained HTML page.

Files written beside ``results.json``:

``results.md``          the table (one row per model and precision) and the environment line
``quality_vs_macs.png`` each quality metric against MACs (paper convention), log-scaled MACs
``latency_vs_macs.png`` the median latency in each runtime against MACs
``samples.png``         the same test inputs through every model, side by side
``report.html``         all of the above in one page; the images are embedded, so it opens anywhere

Example:
    >>> write_report(json.loads(Path("runs/bench/results.json").read_text()), "runs/bench")
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..utils.files import atomic_write_bytes, atomic_write_text

# lower is better for these; the report marks the direction beside each metric
LOWER_IS_BETTER = ("l1", "fid", "kid")


def _fmt_count(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return "–"
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _better(metric: str) -> str:
    return "↓" if metric.split("_")[0] in LOWER_IS_BETTER else "↑"


def columns(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(runtimes, quality metrics) that appear in any row, in first-seen order."""
    runtimes: list[str] = []
    metrics: list[str] = []
    for r in rows:
        runtimes += [k for k in r["latency_ms"] if k not in runtimes]
        metrics += [k for k in r["quality"] if k not in metrics]
    return runtimes, metrics


def markdown_table(results: dict[str, Any]) -> str:
    """The results as a markdown table, followed by the environment and notes."""
    rows = results["rows"]
    runtimes, metrics = columns(rows)
    head = ["model", "method", "arch", "params", "MACs (paper)", "MACs (true)", "size"]
    head += [f"{rt} ms" for rt in runtimes] + [f"{m} {_better(m)}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["name"],
            r["method"],
            f"`{r['arch']}`",
            _fmt_count(r["params"]),
            _fmt_count(r["macs_paper"]),
            _fmt_count(r["macs_true"]),
            _fmt_bytes(r["size_bytes"]),
        ]
        for rt in runtimes:
            ms = r["latency_ms"].get(rt)
            if ms is None:
                cells.append("failed" if rt in r["latency_ms"] else "–")
                continue
            first = next((x for x in rows if x["latency_ms"].get(rt)), None)
            base = first["latency_ms"][rt] if first else None
            speedup = f" ({base / ms:.1f}×)" if base and r is not first else ""
            cells.append(f"{ms:.1f}{speedup}")
        for m in metrics:
            v = r["quality"].get(m)
            cells.append("–" if v is None else f"{v:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    env = results.get("environment_line", "")
    data = results.get("data", {})
    lines += [
        "",
        f"Latency: batch 1, input {data.get('latency_size')}×{data.get('latency_size')}, median of "
        f"{results.get('options', {}).get('repeats')} timed calls after "
        f"{results.get('options', {}).get('warmup')} warm-up calls; speed-ups in brackets are against "
        "the first row measured in the same runtime. int8 rows: ONNX Runtime, static QDQ calibrated on real "
        f"training images. Quality: the test split of {data.get('root')} ({data.get('kind')}, "
        f"{data.get('image_size')} px).",
        "",
        env,
    ]
    failures = [
        f"{lr['name']} / {lr['runtime']}: {lr['error']}"
        for r in rows
        for lr in r["latency"]
        if lr.get("error")
    ]
    if failures:
        lines += ["", "Runtimes that failed:"] + [f"- {f}" for f in failures]
    if results.get("notes"):
        lines += [""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_quality_vs_macs(results: dict[str, Any], path: Path) -> Path | None:
    rows = results["rows"]
    _, metrics = columns(rows)
    if not metrics:
        return None
    plt = _figure()
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics):
        for r in rows:
            v = r["quality"].get(m)
            if v is None:
                continue
            marker = "s" if r["precision"] == "int8" else "o"
            ax.scatter(r["macs_paper"], v, marker=marker)
            ax.annotate(
                r["name"], (r["macs_paper"], v), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xscale("log")
        ax.set_xlabel("MACs (paper convention)")
        ax.set_title(f"{m} ({'lower' if _better(m) == '↓' else 'higher'} is better)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency_vs_macs(results: dict[str, Any], path: Path) -> Path | None:
    rows = results["rows"]
    runtimes, _ = columns(rows)
    if not runtimes:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for rt in runtimes:
        pts = [(r["macs_paper"], r["latency_ms"][rt], r["name"]) for r in rows if r["latency_ms"].get(rt)]
        if not pts:
            continue
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=rt)
        for x, y, name in pts:
            ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs (paper convention)")
    ax.set_ylabel("median latency (ms)")
    env, data = results.get("environment", {}), results.get("data", {})
    size = data.get("latency_size")
    ax.set_title(
        f"batch 1, {size}×{size}, {env.get('threads')} thread(s), {env.get('cpu')}, torch {env.get('torch')}, "
        f"onnxruntime {env.get('onnxruntime')}",
        fontsize=7,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _to_image(t: torch.Tensor):
    import numpy as np

    t = t.detach().float().cpu()
    if t.shape[0] != 3:  # a label map: show its argmax as gray levels
        t = (t.argmax(0, keepdim=True).float() / max(1, t.shape[0] - 1)).repeat(3, 1, 1) * 2 - 1
    return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy().astype(np.uint8)


def plot_samples(
    samples: dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor | None, path: Path
) -> Path:
    """A grid: one test input per row; columns input, every model's output, the ground truth."""
    plt = _figure()
    cols = (
        [("input", inputs)]
        + list(samples.items())
        + ([("ground truth", targets)] if targets is not None else [])
    )
    n = inputs.shape[0]
    fig, axes = plt.subplots(n, len(cols), figsize=(1.35 * len(cols), 1.35 * n + 0.4), squeeze=False)
    for j, (title, images) in enumerate(cols):
        for i in range(n):
            ax = axes[i][j]
            ax.imshow(_to_image(images[i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _md_table_to_html(md: str) -> str:
    out, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= set("-") for c in cells):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c).replace('`', '')}</{tag}>" for c in cells) + "</tr>"
            )
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("- "):
                out.append(f"<li>{html.escape(line[2:])}</li>")
            elif line.strip():
                out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; }
td:first-child, td:nth-child(2), td:nth-child(3) { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
p, li { font-size: 14px; }
"""


def write_report(
    results: dict[str, Any],
    out: str | os.PathLike,
    *,
    samples: dict[str, torch.Tensor] | None = None,
    sample_inputs: torch.Tensor | None = None,
    sample_targets: torch.Tensor | None = None,
    title: str = "gancompress benchmark",
) -> dict[str, Path]:
    """Write results.md, the plots and report.html under ``out``; returns their paths by kind."""
    out = Path(out)
    files: dict[str, Path] = {}
    md = markdown_table(results)
    files["markdown"] = atomic_write_text(out / "results.md", f"# {title}\n\n{md}")
    plots = [
        ("Quality against MACs", plot_quality_vs_macs(results, out / "quality_vs_macs.png")),
        ("Latency against MACs", plot_latency_vs_macs(results, out / "latency_vs_macs.png")),
    ]
    if samples and sample_inputs is not None:
        plots.append(
            (
                "The same test inputs through every model",
                plot_samples(samples, sample_inputs, sample_targets, out / "samples.png"),
            )
        )
    body = [f"<h1>{html.escape(title)}</h1>", _md_table_to_html(md)]
    for heading, path in plots:
        if path is None:
            continue
        files[path.stem] = path
        body += [f"<h2>{html.escape(heading)}</h2>", _embed(path)]
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    files["html"] = atomic_write_bytes(out / "report.html", page.encode("utf-8"))
    for path in [*files.values(), out / "results.json"]:
        if path.is_file():
            path.chmod(0o644)  # temporary files are created private; a report is meant to be shared
    return files
