"""The benchmark report: the answer first, then the table, plots and one self-contained HTML page.

Files written beside ``results.json``:

``results.md``          one line per method (MACs ratio, speed-up in the fastest runtime measured,
                        quality change, the quality-gate verdict), the per-inference floor, the table
                        (one row per model and precision), the FID extractors and their caveats,
                        the failures, the notes and the environment line
``quality_vs_macs.png`` each quality metric that differs between the models against MACs (paper
                        convention, log-scaled); left out when no metric does
``latency_vs_macs.png`` the median latency in each runtime against MACs, with each runtime's floor
``samples.png``         the same test inputs through every model, side by side
``report.html``         all of the above in one page; the images are embedded, so it opens anywhere

A model whose quality gate failed (``row["quality_gate"]["passed"]`` false) is marked in the table
and the samples, listed among the failures and left out of the plots and the lead lines' results.

Example:
    >>> write_report(json.loads(Path("runs/bench/results.json").read_text()), "runs/bench")
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..utils.files import atomic_write_bytes, atomic_write_text
from . import report_plots

# lower is better for these; the report marks the direction beside each metric
LOWER_IS_BETTER = ("l1", "fid", "kid")

METHOD_TITLES = {
    "teacher": "Teacher",
    "gan-compression": "GAN Compression",
    "fast-gan-compression": "Fast GAN Compression",
    "gan-slimming": "GAN Slimming",
    "coronet": "CoroNetGAN",
    "int8-ptq": "int8 post-training quantization",
}
RUNTIME_TITLES = {
    "eager": "PyTorch eager",
    "channels_last": "PyTorch channels-last",
    "compile": "torch.compile",
    "ort-fp32": "ONNX Runtime",
    "ort-int8": "ONNX Runtime int8",
    "openvino-fp32": "OpenVINO",
    "openvino-int8": "OpenVINO int8",
}
# an int8 runtime and the fp32 runtime its speed-up is measured against
FP32_OF_INT8 = {"ort-int8": "ort-fp32", "openvino-int8": "openvino-fp32"}


def runtime_title(runtime: str) -> str:
    return RUNTIME_TITLES.get(runtime, runtime)


def method_title(method: str) -> str:
    return METHOD_TITLES.get(method, method)


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


def failed(row: dict[str, Any]) -> bool:
    """True when the row's quality gate failed (rows without a verdict count as passed)."""
    gate = row.get("quality_gate")
    return isinstance(gate, dict) and gate.get("passed") is False


def gate_text(row: dict[str, Any], short: bool = False) -> str:
    """ "passes", or "FAILED: " and the reasons (``short``: the first reason without its figures)."""
    gate = row.get("quality_gate")
    if not isinstance(gate, dict):
        return "–"
    if gate.get("passed"):
        return "passes"
    reasons = [str(r) for r in gate.get("reasons") or []] or ["no reason given"]
    if short:
        return f"FAILED: {reasons[0].split(' (')[0]}" + (" …" if len(reasons) > 1 else "")
    return "FAILED: " + "; ".join(reasons)


def columns(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(runtimes, quality metrics) that appear in any row, in first-seen order."""
    runtimes: list[str] = []
    metrics: list[str] = []
    for r in rows:
        runtimes += [k for k in r["latency_ms"] if k not in runtimes]
        metrics += [k for k in r["quality"] if k not in metrics]
    return runtimes, metrics


# -- FID extractors ------------------------------------------------------------------------------


def split_metric(metric: str) -> tuple[str, str | None]:
    """``"fid_domain"`` → ``("fid", "domain")``; ``"psnr"`` → ``("psnr", None)``."""
    for kind in ("content_accuracy", "fid", "kid"):
        if metric.startswith(kind + "_"):
            return kind, metric[len(kind) + 1 :]
    return metric, None


def extractor_caveat(name: str, comparable: bool | None) -> str:
    """What an FID with these features can be compared with."""
    if comparable or name == "inception-v3-fid":
        return "the FID Inception-v3; comparable with published FIDs only at the same image count and size"
    if name.startswith("domain/"):
        return "the dataset's own domain classifier: comparable within this report, not with published FIDs"
    if name.startswith("vgg"):
        return "VGG16 features: comparable within this report, not with published (Inception-v3) FIDs"
    return "not the FID Inception-v3: comparable within this report, not with published FIDs"


def extractors(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every FID extractor label of the results → its features' name, image counts and caveat."""
    found: dict[str, dict[str, Any]] = {}
    for r in results["rows"]:
        for label, entry in ((r.get("evaluation") or {}).get("extractors") or {}).items():
            if label not in found and entry.get("extractor"):
                found[label] = dict(entry)
        for m in r["quality"]:
            kind, label = split_metric(m)
            if label is not None and label not in found:
                found[label] = {"extractor": label}  # results from before the extractor was recorded
    for entry in found.values():
        entry["caveat"] = extractor_caveat(entry["extractor"], entry.get("comparable_with_published_fid"))
    return found


def metric_title(metric: str, ext: dict[str, dict[str, Any]]) -> str:
    """A metric's name for people: ``fid_domain`` → ``FID [domain/fonts]``."""
    kind, label = split_metric(metric)
    base = {"psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "L1", "miou": "mIoU", "fid": "FID", "kid": "KID"}
    base["content_accuracy"] = "content accuracy"
    title = base.get(kind, kind)
    if label is not None:
        title += f" [{ext.get(label, {}).get('extractor', label)}]"
    return title


# -- the answer ------------------------------------------------------------------------------------


def _teacher(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if r["method"] == "teacher" and r.get("precision") != "int8"), None)


def _fastest(
    row: dict[str, Any], reference: dict[str, Any], int8: bool = False
) -> tuple[str, float, float, float] | None:
    """(runtime, speed-up, ms, reference ms) of ``row`` in its fastest runtime, against ``reference``
    in that runtime (an int8 runtime: against the reference in the matching fp32 runtime)."""
    best = None
    for rt, ms in row["latency_ms"].items():
        ref_ms = reference["latency_ms"].get(FP32_OF_INT8.get(rt, rt) if int8 else rt)
        if ms and ref_ms and (best is None or ms < best[2]):
            best = (rt, ref_ms / ms, ms, ref_ms)
    return best


def _speed(row: dict[str, Any], teacher: dict[str, Any], int8: bool = False, macs_ratio: float = 1.0) -> str:
    """ "8.4× faster in OpenVINO (30.5 → 3.63 ms; 69 % of the MACs ratio)", in the fastest runtime."""
    best = _fastest(row, teacher, int8)
    if best is None:
        return "not timed"
    rt, speedup, ms, ref_ms = best
    against = f" than fp32 {runtime_title(FP32_OF_INT8[rt])}" if int8 and rt in FP32_OF_INT8 else ""
    how = f"{speedup:.1f}× faster" if speedup >= 1 else f"{1 / speedup:.1f}× slower"
    share = f"; {100 * speedup / macs_ratio:.0f} % of the MACs ratio" if macs_ratio > 1.05 else ""
    return f"{how} in {runtime_title(rt)}{against} ({ref_ms:.3g} → {ms:.3g} ms{share})"


def _quality_change(
    row: dict[str, Any], teacher: dict[str, Any], ext: dict[str, dict[str, Any]]
) -> list[str]:
    q, tq = row["quality"], teacher["quality"]
    parts = []
    if q.get("psnr") is not None and tq.get("psnr") is not None:
        parts.append(f"PSNR {q['psnr'] - tq['psnr']:+.2f} dB".replace("-", "−"))
    if q.get("miou") is not None and tq.get("miou") is not None:
        parts.append(f"mIoU {q['miou'] - tq['miou']:+.3f}".replace("-", "−"))
    for m in q:
        kind, label = split_metric(m)
        if kind == "fid" and tq.get(m) is not None:
            parts.append(f"{metric_title(m, ext)}¹ {q[m]:.1f} (teacher {tq[m]:.1f})")
    return parts


def _verdict(row: dict[str, Any]) -> str:
    return "passes" if not failed(row) else f"**FAILS** the quality gate: {gate_text(row)[len('FAILED: ') :]}"


def lead_lines(results: dict[str, Any]) -> list[str]:
    """One line per method before any table: MACs ratio, speed-up, quality change, verdict.

    Example line: ``**Fast GAN Compression** (`fgc`): 12.1× fewer MACs, 8.4× faster in OpenVINO
    (12.3 → 1.46 ms; 69 % of the MACs ratio), PSNR −0.20 dB — passes``.
    """
    rows = results["rows"]
    teacher = _teacher(rows)
    if teacher is None:
        return []
    ext = extractors(results)
    by_name = {r["name"]: r for r in rows}
    lines = []
    # the methods first, then int8 of the teacher alone
    order = [r for r in rows if r.get("precision") != "int8"] + [r for r in rows if r["method"] == "int8-ptq"]
    for r in order:
        if r is teacher:
            continue
        int8 = r.get("precision") == "int8"
        head = f"**{method_title(r['method'])}** (`{r['name']}`)"
        if failed(r):
            ratio = teacher["macs_paper"] / max(r["macs_paper"], 1)
            lines.append(f"{head}: {_verdict(r)} — {ratio:.1f}× fewer MACs, but not a result")
            continue
        ratio = teacher["macs_paper"] / max(r["macs_paper"], 1)
        parts = [] if int8 else [f"{ratio:.1f}× fewer MACs"]
        parts.append(_speed(r, teacher, int8, macs_ratio=1.0 if int8 else ratio))
        parts += _quality_change(r, teacher, ext)
        line = f"{head}: {', '.join(parts)} — {_verdict(r)}"
        r8 = by_name.get(f"{r['name']} int8")
        if not int8 and r8 is not None:
            if failed(r8):
                line += f"; its int8 model {_verdict(r8)}"
            else:
                line += f"; with int8: {_speed(r8, teacher, int8=True)}, " + ", ".join(
                    _quality_change(r8, teacher, ext)[:1]
                )
                line = line.rstrip(", ")
        lines.append(line)
    for name, reason in (results.get("failed_models") or {}).items():
        lines.append(
            f"**{method_title(name)}** (`{name}`): **FAILED** before it could be measured — {reason}"
        )
    return lines


def floor_text(results: dict[str, Any]) -> str | None:
    """The per-inference floor of each runtime, and the largest speed-up it leaves over the teacher."""
    floor = results.get("floor")
    teacher = _teacher(results["rows"])
    if not floor or not teacher:
        return None
    parts = []
    for rt, ms in (floor.get("latency_ms") or {}).items():
        if not ms:
            continue
        part = f"{runtime_title(rt)} {ms:.3g} ms"
        t_ms = teacher["latency_ms"].get(rt)
        if t_ms and t_ms > 1.05 * ms:
            bound = f"{t_ms / ms:.{0 if t_ms >= 10 * ms else 1}f}"
            part += f" (at most {bound}× faster than the teacher's {t_ms:.3g} ms)"
        elif t_ms:
            part += f" (the teacher: {t_ms:.3g} ms)"
        parts.append(part)
    if not parts:
        return None
    share = 100 * floor["macs_paper"] / max(teacher["macs_paper"], 1)
    return (
        f"Per-inference floor: {floor['what']}, {share:.2g} % of the teacher's MACs, timed the same way: "
        + "; ".join(parts)
        + ". A student of the same depth spends about this much per call at least, however few MACs it has."
    )


# -- the table -------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> tuple[list[str], list[list[str]], int]:
    """The header, the cells of the results table (one row per model and precision) and how many
    of its last columns are quality metrics."""
    rows = results["rows"]
    runtimes, metrics = columns(rows)
    ext = extractors(results)
    teacher = _teacher(rows) or (rows[0] if rows else None)
    head = ["model", "method", "quality gate", "arch", "params", "MACs (paper)", "fewer MACs", "MACs (true)"]
    head += ["size"] + [f"{rt} ms" for rt in runtimes]
    head += [f"{metric_title(m, ext)}{'¹' if split_metric(m)[1] else ''} {_better(m)}" for m in metrics]
    body = []
    for r in rows:
        cells = [
            r["name"],
            r["method"],
            gate_text(r, short=True),
            f"`{r['arch']}`",
            _fmt_count(r["params"]),
            _fmt_count(r["macs_paper"]),
            f"{teacher['macs_paper'] / max(r['macs_paper'], 1):.1f}×" if teacher else "–",
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
            cells.append(f"{ms:.3g}{speedup}")
        for m in metrics:
            v = r["quality"].get(m)
            cells.append("–" if v is None else f"{v:.4g}")
        body.append(cells)
    return head, body, len(metrics)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def _notes_after_table(results: dict[str, Any]) -> list[str]:
    data, opts = results.get("data", {}), results.get("options", {})
    size = data.get("latency_size")
    lines = [
        f"Latency: batch 1, input {size}×{size}, median of {opts.get('repeats')} timed calls after "
        f"{opts.get('warmup')} warm-up calls; speed-ups in brackets are against the first row measured in "
        "the same runtime; 'fewer MACs' is against the teacher. int8 rows: ONNX Runtime, static QDQ "
        f"calibrated on real training images. Quality: the test split of {data.get('root')} "
        f"({data.get('kind')}, {data.get('image_size')} px)."
    ]
    for label, e in extractors(results).items():
        images = f", {e['num_fake']} generated vs {e['num_real']} real images" if e.get("num_fake") else ""
        lines.append(f"¹ FID/KID [{e['extractor']}] (`--extractors {label}`{images}): {e['caveat']}.")
    return lines


def failure_lines(results: dict[str, Any]) -> list[str]:
    """Models whose quality gate failed, models that produced nothing, runtimes that failed."""
    out = [
        f"{r['name']}: quality gate failed — {'; '.join(r['quality_gate'].get('reasons') or [])} "
        f"(verdict: {r['quality_gate'].get('source', 'not recorded')})"
        for r in results["rows"]
        if failed(r)
    ]
    out += [
        f"{name}: no model to measure — {reason}"
        for name, reason in (results.get("failed_models") or {}).items()
    ]
    out += [
        f"{lr['name']} / {lr['runtime']}: {lr['error']}"
        for r in results["rows"]
        for lr in r["latency"]
        if lr.get("error")
    ]
    return out


def sections(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report as blocks: ``("h2", text)``, ``("p", text)``, ``("ul" or "answer", [text])``,
    ``("table", (head, body))``."""
    blocks: list[tuple[str, Any]] = []
    lead = lead_lines(results)
    if lead:
        blocks += [("h2", "The answer"), ("answer", lead)]
    floor = floor_text(results)
    if floor:
        blocks.append(("p", floor))
    blocks += [("h2", "All models"), ("table", table(results))]
    blocks += [("p", line) for line in _notes_after_table(results)]
    failures = failure_lines(results)
    if failures:
        blocks += [("h2", "Failures"), ("ul", failures)]
    if results.get("notes"):
        blocks += [("h2", "Notes"), ("ul", list(results["notes"]))]
    if results.get("environment_line"):
        blocks.append(("p", results["environment_line"]))
    return blocks


def markdown_table(results: dict[str, Any]) -> str:
    """The report as markdown: the answer, the table, the caveats, the failures, the environment."""
    lines: list[str] = []
    for kind, payload in sections(results):
        if kind == "h2":
            lines += [f"## {payload}", ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind in ("ul", "answer"):
            lines += [f"- {item}" for item in payload] + [""]
        else:
            head, body, _ = payload
            lines += [_md_row(head), "|" + "---|" * len(head)] + [_md_row(c) for c in body] + [""]
    return "\n".join(lines).rstrip() + "\n"


# -- HTML ------------------------------------------------------------------------------------------


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, everything else escaped."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _html_table(head: Sequence[str], body: Sequence[Sequence[str]], failed_rows: Sequence[bool]) -> str:
    out = ['<div class="table-wrap"><table>']  # the box scrolls sideways when the table is wider
    left = {"model", "method", "quality gate", "arch"}  # text columns; numbers align right
    out.append(
        "<tr>"
        + "".join(
            f'<th class="left">{html.escape(h)}</th>' if h in left else f"<th>{html.escape(h)}</th>"
            for h in head
        )
        + "</tr>"
    )
    for cells, bad in zip(body, failed_rows):
        tds = []
        for h, c in zip(head, cells):
            cls = {"arch": "arch", "quality gate": "gate"}.get(h, "")
            text = _inline(c).replace("_", "_<wbr>") if cls == "arch" else _inline(c)  # wrap at "_" only
            tds.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
        out.append(f'<tr class="{"failed" if bad else ""}">' + "".join(tds) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 1em 0; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
td:first-child, td:nth-child(2), td.gate, td.arch, th.left { text-align: left; }
td.arch { min-width: 7em; max-width: 15em; }
td.gate { max-width: 16em; }
tr.failed td { background: #fdecec; color: #7a0014; }
tr.failed td.gate { font-weight: 600; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.5em 0; }
p, li { font-size: 14px; line-height: 1.45; }
ul.answer li { margin: 0.3em 0; }
figcaption { font-size: 13px; color: #555; }
code { font-size: 12px; }
"""


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def html_page(results: dict[str, Any], title: str, figures: Sequence[tuple[str, Path, str]]) -> str:
    """The self-contained page: the blocks of :func:`sections`, then each figure with its caption."""
    failed_rows = [failed(r) for r in results["rows"]]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for kind, payload in sections(results):
        if kind == "h2":
            body.append(f"<h2>{html.escape(payload)}</h2>")
        elif kind == "p":
            body.append(f"<p>{_inline(payload)}</p>")
        elif kind in ("ul", "answer"):
            body.append(f'<ul class="{kind}">' + "".join(f"<li>{_inline(i)}</li>" for i in payload) + "</ul>")
        else:
            # two tables in the page, cost and speed then quality, so that each fits a 1280-px window
            head, cells, n_quality = payload
            cut = len(head) - n_quality
            body.append(_html_table(head[:cut], [c[:cut] for c in cells], failed_rows))
            if n_quality:
                keep = [0, 2, *range(cut, len(head))]  # model and quality gate, then the metrics
                body.append("<h3>Quality</h3>")
                body.append(
                    _html_table([head[i] for i in keep], [[c[i] for i in keep] for c in cells], failed_rows)
                )
    for heading, path, caption in figures:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(f"<figure>{_embed(path)}<figcaption>{_inline(caption)}</figcaption></figure>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# -- figures ---------------------------------------------------------------------------------------


def quality_figure(results: dict[str, Any]):
    """(figure, metrics shown) of the passing rows' quality against MACs, or None (see report_plots)."""
    rows = [r for r in results["rows"] if not failed(r)]
    ext = extractors(results)
    _, metrics = columns(rows)

    def title(m: str) -> str:
        return f"{metric_title(m, ext)} ({'lower' if _better(m) == '↓' else 'higher'} is better)"

    return report_plots.quality_figure(rows, metrics, title)


def latency_figure(results: dict[str, Any]):
    """The passing rows' latency against MACs with each runtime's floor, or None (see report_plots)."""
    rows = [r for r in results["rows"] if not failed(r)]
    runtimes, _ = columns(rows)
    env, data = results.get("environment", {}), results.get("data", {})
    size = data.get("latency_size")
    title = (
        f"batch 1, {size}×{size}, {env.get('threads')} thread(s), {env.get('cpu')}, torch {env.get('torch')}, "
        f"onnxruntime {env.get('onnxruntime')}"
    )
    return report_plots.latency_figure(rows, runtimes, results.get("floor"), title, runtime_title)


def plot_quality_vs_macs(results: dict[str, Any], path: Path) -> Path | None:
    made = quality_figure(results)
    if made is None:
        return None
    report_plots.save(made[0], path)
    return path


def plot_latency_vs_macs(results: dict[str, Any], path: Path) -> Path | None:
    fig = latency_figure(results)
    if fig is None:
        return None
    report_plots.save(fig, path)
    return path


def plot_samples(
    samples: dict[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    path: Path,
    failed_names: Sequence[str] = (),
) -> Path:
    """A grid: one test input per row; columns input, every model's output, the ground truth."""
    report_plots.save(report_plots.samples_figure(samples, inputs, targets, failed_names), path)
    return path


def _captions(results: dict[str, Any], shown: Sequence[str]) -> tuple[str, str]:
    rows = results["rows"]
    _, metrics = columns(rows)
    ext = extractors(results)
    left_out = [metric_title(m, ext) for m in metrics if m not in shown]
    quality = "Circles: fp32 models; squares: int8. Failed models are not plotted."
    if left_out:
        quality += f" Left out, equal for every model: {', '.join(left_out)}."
    for label, e in ext.items():
        if any(split_metric(m)[1] == label for m in shown):
            quality += f" FID/KID [{e['extractor']}]: {e['caveat']}."
    latency = "Circles: fp32 models; squares: int8; dotted lines: each runtime's per-inference floor."
    return quality, latency + " Failed models are not plotted."


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
    figures: list[tuple[str, Path, str]] = []
    made = quality_figure(results)
    quality_caption, latency_caption = _captions(results, made[1] if made else [])
    if made is not None:
        report_plots.save(made[0], out / "quality_vs_macs.png")
        figures.append(("Quality against MACs", out / "quality_vs_macs.png", quality_caption))
    else:
        (out / "quality_vs_macs.png").unlink(missing_ok=True)  # never leave a stale plot from a rerun
    if plot_latency_vs_macs(results, out / "latency_vs_macs.png"):
        figures.append(("Latency against MACs", out / "latency_vs_macs.png", latency_caption))
    if samples and sample_inputs is not None:
        bad = [r["name"] for r in results["rows"] if failed(r)]
        plot_samples(samples, sample_inputs, sample_targets, out / "samples.png", bad)
        caption = "The first test inputs; columns of failed models are marked (failed)."
        figures.append(("The same test inputs through every model", out / "samples.png", caption))
    for _, path, _ in figures:
        files[path.stem] = path
    page = html_page(results, title, figures)
    files["html"] = atomic_write_bytes(out / "report.html", page.encode("utf-8"))
    for path in [*files.values(), out / "results.json"]:
        if path.is_file():
            path.chmod(0o644)  # temporary files are created private; a report is meant to be shared
    return files
