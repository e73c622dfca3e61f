"""Parameters and MACs of the published teacher and student architectures, next to the published figures.

    python bench/profile_table.py [--json out.json]

Counts come from ``gancompress.metrics.profile`` on networks built on the meta device (shapes only),
so this runs in seconds on any machine; the published figures are those of shared/REFERENCE.md.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator

ROWS = [
    # name, family, options, published params (M), published paper MACs (G)
    ("ResNet-9blocks teacher (CycleGAN/pix2pix)", "resnet", {}, 11.378, 56.8),
    ("Mobile ResNet teacher, ngf 64", "resnet", {"separable": True}, 1.99, 18.31),
    ("Mobile ResNet teacher, ngf 96", "resnet", {"separable": True, "base_width": 96}, 4.42, 40.16),
    (
        "GAN Compression subnet 16_16_32_16_32_32_16_16",
        "resnet",
        {"separable": True, "arch": "16_16_32_16_32_32_16_16"},
        0.357,
        None,
    ),
    ("U-Net 256 (pix2pix)", "unet", {}, 54.4, 18.6),
    ("GauGAN Cityscapes", "spade", {"preset": "cityscapes"}, 93.05, 281.4),
    ("GauGAN COCO-Stuff", "spade", {"preset": "coco"}, 97.48, 191.2),
    ("MUNIT edges2shoes (with style encoder)", "munit", {}, 15.03, 77.3),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = []
    for name, family, options, pub_params, pub_macs in ROWS:
        with torch.device("meta"):
            g = create_generator(family, **options)
        r = profile_generator(g)
        rows.append(
            {
                "name": name,
                "family": family,
                "arch": str(g.arch),
                "input_shape": r.input_shape,
                "params": r.params,
                "macs_paper": r.macs_paper,
                "macs_true": r.macs_true,
                "published_params_M": pub_params,
                "published_macs_G": pub_macs,
            }
        )
    print("| model | input | params | MACs (paper) | MACs (true) | published params / MACs |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        pub = (
            f"{row['published_params_M']}M / {row['published_macs_G']}G"
            if row["published_macs_G"]
            else f"{row['published_params_M']}M / –"
        )
        shape = "×".join(str(s) for s in row["input_shape"])
        print(
            f"| {row['name']} | {shape} | {row['params'] / 1e6:.3f}M | {row['macs_paper'] / 1e9:.2f}G | "
            f"{row['macs_true'] / 1e9:.2f}G | {pub} |"
        )
    meta = {"torch": torch.__version__, "python": platform.python_version(), "device": "meta (shapes only)"}
    print(f"\ntorch {meta['torch']}, python {meta['python']}; batch 1; counted on the meta device")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
