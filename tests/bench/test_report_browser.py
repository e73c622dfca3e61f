"""The report in headless Chromium at 1280 px: the page never scrolls sideways (a wide table scrolls
inside its own box) and a screenshot is taken. Skipped where Chromium is not installed
(Debian: ``apt-get install chromium``)."""

import shutil
import struct
import subprocess
import tempfile

import pytest
import torch
from report_data import synthetic_results

from gancompress.bench.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed"),
]
WIDTH = 1280


def _chromium(*args, timeout=120):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp(prefix='gancompress-chromium-')}",
        f"--window-size={WIDTH},900",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results = synthetic_results()
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    samples = {r["name"]: (0.8 * x).clamp(-1, 1) for r in results["rows"]}
    write_report(results, out, samples=samples, sample_inputs=x, sample_targets=x)
    return out / "report.html"


def test_page_is_no_wider_than_the_window(page, tmp_path):
    # a copy that writes its own layout widths into the DOM, read back with --dump-dom
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const d = document.documentElement;"
        " const boxes = [...document.querySelectorAll('.table-wrap')];"
        " document.body.setAttribute('data-layout', [d.scrollWidth, d.clientWidth,"
        " ...boxes.map(b => b.getBoundingClientRect().right)].join(',')); });</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    done = _chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    marker = 'data-layout="'
    assert marker in done.stdout, done.stdout[-2000:]
    values = [float(v) for v in done.stdout.split(marker, 1)[1].split('"', 1)[0].split(",")]
    scroll_width, client_width, *table_boxes = values
    assert scroll_width <= client_width <= WIDTH  # the page does not scroll sideways
    assert table_boxes and all(right <= client_width for right in table_boxes)


def test_screenshot_at_1280_px(page, tmp_path):
    shot = tmp_path / "report.png"
    done = _chromium(f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (WIDTH, 900)
