"""What a user sees of a run: a CSV of the logged steps, TensorBoard scalars and sample grids."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..utils.files import atomic_write_bytes, atomic_write_text, storage_error


class CsvLog:
    """``logs/train.csv``: one row per logged step; a resumed run drops the rows after its checkpoint."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = Path(path)
        self.fields: list[str] = []
        self.rows: list[dict[str, str]] = []
        if resume_step > 0 and self.path.is_file():
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or [])
                self.rows = [
                    r for r in reader if r.get("step", "").isdigit() and int(r["step"]) <= resume_step
                ]
        self._flush()

    def write(self, row: dict[str, float | int]) -> None:
        new = [k for k in row if k not in self.fields]
        self.fields += new
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        if new:
            self._flush()
        else:
            try:
                with self.path.open("a", newline="") as fh:
                    csv.DictWriter(fh, self.fields).writerow(self.rows[-1])
            except OSError as exc:  # a full or read-only disk: named, like every other writer
                raise storage_error(exc, self.path) from None

    def _flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.fields)
        if self.fields:
            writer.writeheader()
            writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


def _fmt(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def to_uint8_grid(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → one (N*H, W, 3) uint8 image, rows stacked top to bottom."""
    x = images.detach().float().cpu().clamp(-1, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        x = x[:, :3]
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    return torch.cat(list(x), dim=1).permute(1, 2, 0).numpy()


def save_grid(path: Path, images: torch.Tensor) -> Path:
    """Write the sample grid of ``images`` as a PNG (atomically)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8_grid(images)).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
