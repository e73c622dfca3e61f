"""The report from a hand-built results object: the answer first, failures as failures, FID
extractors named, constant metrics not plotted, and a layout that holds in a 1280-px window."""

import copy
import re
from html.parser import HTMLParser

import pytest
import torch
from report_data import synthetic_results

from gancompress.bench import report, report_plots
from gancompress.bench.report import lead_lines, markdown_table, write_report


@pytest.fixture()
def results():
    return synthetic_results()


def _samples(results, n=2):
    torch.manual_seed(0)
    x = torch.rand(n, 3, 16, 16) * 2 - 1
    samples = {r["name"]: (0.8 * x).clamp(-1, 1) for r in results["rows"]}
    samples["gan-slimming"] = torch.zeros_like(x)
    return samples, x


def test_the_report_leads_with_one_line_per_method(results):
    md = markdown_table(results)
    lead = lead_lines(results)
    # the four methods and int8 of the teacher, each once, before any table
    heads = [re.match(r"\*\*(.+?)\*\*", line).group(1) for line in lead]
    assert heads == [
        "Fast GAN Compression",
        "GAN Compression",
        "GAN Slimming",
        "int8 post-training quantization",
        "CoroNetGAN",
    ]
    assert md.index("## The answer") < md.index("| model |")
    fgc = lead[0]
    # figures from the results: 1.43G / 118M MACs, OpenVINO (the fastest runtime measured) 30.5 → 3.63 ms
    assert fgc.startswith(
        "**Fast GAN Compression** (`fast-gan-compression`): 12.1× fewer MACs, 8.4× faster in OpenVINO"
    )
    assert "69 % of the MACs ratio" in fgc and "PSNR −0.20 dB" in fgc and fgc.count("— passes") == 1
    assert "with int8: 10.0× faster in ONNX Runtime int8 than fp32 ONNX Runtime" in fgc
    assert "1.9× faster in ONNX Runtime int8" in lead[3] and "— passes" in lead[3]
    # failures are failures: no speed-up is claimed for them
    assert "**FAILS** the quality gate: constant output" in lead[2] and "faster" not in lead[2]
    assert "not a result" in lead[2]
    assert "**FAILED** before it could be measured — ConfigError: budget too small" in lead[4]
    # the floor beside the speed-ups: before the table, with the bound it puts on a speed-up
    floor = md.index("Per-inference floor")
    assert floor < md.index("| model |")
    assert "OpenVINO 0.61 ms (at most 50× faster than the teacher's 30.5 ms)" in md


def test_a_failed_model_is_marked_listed_and_not_plotted(results, tmp_path):
    md = markdown_table(results)
    assert "| gan-slimming | gan-slimming | FAILED: constant output |" in md
    assert (
        "| gan-slimming int8 | gan-slimming + int8-ptq | FAILED: its fp32 model gan-slimming failed |" in md
    )
    failures = md[md.index("## Failures") :]
    assert "gan-slimming: quality gate failed — constant output (pixel standard deviation" in failures
    assert "runs/gan-slimming/summary.json" in failures and "coronet: no model to measure" in failures

    fig, _ = report.quality_figure(results)
    labels = {t.get_text() for t in report_plots.visible_texts(fig)}
    assert (
        "fast-gan-compression" in labels
        and "gan-slimming" not in labels
        and "gan-slimming int8" not in labels
    )
    labels = {t.get_text() for t in report_plots.visible_texts(report.latency_figure(results))}
    assert "teacher" in labels and "gan-slimming" not in labels

    samples, x = _samples(results)
    write_report(results, tmp_path, samples=samples, sample_inputs=x, sample_targets=x)
    page = (tmp_path / "report.html").read_text()
    assert page.count('<tr class="failed">') == 4  # two rows in each of the two tables
    fig = report_plots.samples_figure(samples, x, x, ["gan-slimming", "gan-slimming int8"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any(t.endswith("(failed)") and t.startswith("gan-") for t in titles)
    assert sum(t.endswith("(failed)") for t in titles) == 2


def test_a_metric_equal_for_every_model_is_not_plotted(results, tmp_path):
    _, shown = report.quality_figure(results)
    assert "content_accuracy_domain" not in shown and {"psnr", "fid_domain"} <= set(shown)
    samples, x = _samples(results)
    write_report(results, tmp_path, samples=samples, sample_inputs=x)
    page = (tmp_path / "report.html").read_text()
    assert "Left out, equal for every model: content accuracy [domain/fonts]" in page
    assert page.count("data:image/png;base64,") == 3

    # every metric equal: the quality plot is left out altogether (and a stale one removed)
    flat = copy.deepcopy(results)
    for r in flat["rows"]:
        r["quality"] = {"psnr": 20.0, "fid_domain": 50.0}
    assert report.quality_figure(flat) is None
    files = write_report(flat, tmp_path)
    assert "quality_vs_macs" not in files and not (tmp_path / "quality_vs_macs.png").exists()
    assert "Quality against MACs" not in (tmp_path / "report.html").read_text()


def test_every_fid_names_its_extractor_and_caveat(results):
    md = markdown_table(results)
    head = next(line for line in md.splitlines() if line.startswith("| model |"))
    fid_columns = [c.strip() for c in head.split("|") if c.strip().startswith(("FID", "KID"))]
    assert fid_columns == ["FID [domain/fonts]¹ ↓", "KID [domain/fonts]¹ ↓"]
    assert (
        "¹ FID/KID [domain/fonts] (`--extractors domain`, 96 generated vs 96 real images): the dataset's own "
        "domain classifier: comparable within this report, not with published FIDs." in md
    )
    lead = lead_lines(results)
    assert all("FID [domain/fonts]¹" in line for line in lead if "FID" in line)
    _, shown = report.quality_figure(results)
    fig, _ = report.quality_figure(results)
    assert any("FID [domain/fonts]" in ax.get_title() for ax in fig.axes)
    # an Inception FID is said to be one; results from before the extractor was recorded still name it
    old = copy.deepcopy(results)
    for r in old["rows"]:
        r["evaluation"].pop("extractors")
    assert "FID [domain]¹ ↓" in markdown_table(old)
    assert "FID Inception-v3" in report.extractor_caveat("inception-v3-fid", True)


class _Layout(HTMLParser):
    """The page's CSS, and for every table and image the classes of the elements around it."""

    def __init__(self):
        super().__init__()
        self.stack, self.tables, self.images, self.css, self._in_style = [], [], [], "", False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([c for _, c in self.stack])
        if tag == "img":
            self.images.append(attrs)
        if tag == "style":
            self._in_style = True
        if tag not in ("img", "meta", "br", "wbr"):
            self.stack.append((tag, attrs.get("class", "")))

    def handle_endtag(self, tag):
        self._in_style = False
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._in_style:
            self.css += data


def _css_rule(css, selector):
    m = re.search(r"(^|\})\s*" + re.escape(selector) + r"\s*\{([^}]*)\}", css, re.M)
    assert m, f"no CSS rule for {selector}"
    return {k.strip(): v.strip() for k, v in (d.split(":", 1) for d in m.group(2).split(";") if ":" in d)}


def test_page_layout_scrolls_wide_tables_in_their_box_and_fits_images(results, tmp_path):
    samples, x = _samples(results)
    write_report(results, tmp_path, samples=samples, sample_inputs=x, sample_targets=x)
    page = _Layout()
    page.feed((tmp_path / "report.html").read_text())
    assert page.tables and all("table-wrap" in classes for classes in page.tables)
    assert _css_rule(page.css, ".table-wrap")["overflow-x"] == "auto"
    img = _css_rule(page.css, "img")
    assert img["max-width"] == "100%" and img["height"] == "auto"
    assert len(page.images) == 3 and all(i["src"].startswith("data:image/png;base64,") for i in page.images)
    assert "max-width" in _css_rule(page.css, "body")


def _crowded(results, n=7):
    """Many models at almost the same MACs and quality: the hardest case for label placement."""
    crowded = copy.deepcopy(results)
    base = crowded["rows"][2]
    for i in range(n):
        for precision in ("fp32", "int8"):
            r = copy.deepcopy(base)
            r["name"] = f"student-{i}" + (" int8" if precision == "int8" else "")
            r["precision"] = precision
            r["macs_paper"] = base["macs_paper"] * (1 + 0.04 * i)
            r["quality"] = {k: v * (1 + 0.002 * i) for k, v in base["quality"].items()}
            r["latency_ms"] = {k: v * (1 + 0.03 * i) for k, v in base["latency_ms"].items()}
            crowded["rows"].append(r)
    return crowded


@pytest.mark.parametrize("case", ["synthetic", pytest.param("crowded", marks=pytest.mark.slow)])
def test_no_two_plot_labels_overlap(results, case):
    """Point labels, tick labels, titles and legends of every figure: no two boxes intersect."""
    data = results if case == "synthetic" else _crowded(results)
    fig, _ = report.quality_figure(data)
    assert report_plots.text_overlaps(fig) == []
    assert report_plots.text_overlaps(report.latency_figure(data)) == []
    samples, x = _samples(data, n=3)
    assert report_plots.text_overlaps(report_plots.samples_figure(samples, x, x, ["gan-slimming"])) == []


def test_the_overlap_check_can_fail():
    plt = report_plots.pyplot()
    fig, ax = plt.subplots()
    ax.annotate("a label", (0.5, 0.5))
    ax.annotate("a label too", (0.5, 0.5))
    assert report_plots.text_overlaps(fig) == [("a label", "a label too")]
    plt.close(fig)


def test_log_tick_labels_are_thinned_until_they_fit():
    plt = report_plots.pyplot()
    fig, ax = plt.subplots(figsize=(1.6, 1.6))
    ax.scatter([1e3, 1e9], [1, 2])
    ax.set_xscale("log")
    report_plots.log_ticks(ax, "x", lambda v: f"{v:.0f} MACs")
    report_plots.thin_ticks(fig, [(ax, "x")])
    assert report_plots.text_overlaps(fig) == []
    plt.close(fig)


def test_a_slower_student_is_said_to_be_slower(results):
    slow = copy.deepcopy(results)
    for r in slow["rows"]:
        if r["name"] == "gan-compression":
            r["latency_ms"] = {"ort-fp32": 82.0, "openvino-fp32": 61.0}
    slow["floor"]["latency_ms"]["ort-fp32"] = 50.0  # a floor above the teacher's time states no bound
    line = next(x for x in lead_lines(slow) if x.startswith("**GAN Compression**"))
    assert "2.0× slower in OpenVINO (30.5 → 61 ms" in line and "faster in OpenVINO" not in line
    md = markdown_table(slow)
    assert "ONNX Runtime 50 ms (the teacher: 41 ms)" in md
