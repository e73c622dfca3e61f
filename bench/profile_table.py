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
    (
        "Mobile GauGAN teacher (MobileSPADE), Cityscapes",
        "spade",
        {"preset": "cityscapes", "separable": True},
        None,
        None,
    ),
]

# Every released compressed architecture of mit-han-lab/gan-compression (the config_str of its
# scripts/*/latency_*.sh) beside its README "Performance of released models" row, whose MACs add
# 1 per non-affine norm element (the "MACs (paper + norms)" column).
_MOBILE = {"separable": True}
_LEGACY = {"separable": True, "layout": "legacy"}
_CITY = {"separable": True, "preset": "cityscapes"}
_COCO = {"separable": True, "preset": "coco"}
RELEASED = [
    ("horse→zebra GC (paper)", "resnet", _MOBILE, "24_24_24_32_20_16", 0.342, 2.67),
    ("horse→zebra GC (retrained)", "resnet", _MOBILE, "16_16_32_16_32_32_16_16", 0.357, 2.55),
    ("horse→zebra Fast", "resnet", _MOBILE, "16_16_24_16_32_64_16_24", 0.355, 2.64),
    ("edges→shoes GC (paper), legacy layout", "resnet", _LEGACY, "32_32_40_48_16_32", 0.700, 4.81),
    ("edges→shoes GC (retrained)", "resnet", _MOBILE, "32_32_48_32_48_48_16_16", 0.822, 4.99),
    ("edges→shoes Fast", "resnet", _MOBILE, "24_24_40_56_24_56_16_40", 0.703, 4.83),
    ("cityscapes GC (paper), legacy layout", "resnet", _LEGACY, "48_32_40_40_24_32", 0.707, 5.66),
    ("cityscapes GC (retrained)", "resnet", _MOBILE, "32_32_48_32_32_48_24_24", 0.781, 5.59),
    ("cityscapes Fast", "resnet", _MOBILE, "16_24_48_56_40_48_24_16", 0.867, 5.61),
    ("map→aerial GC", "resnet", _MOBILE, "32_32_48_32_48_32_16_16", 0.746, 4.68),
    ("map→aerial Fast", "resnet", _MOBILE, "16_16_40_40_40_64_24_16", 0.708, 4.53),
    ("GauGAN Cityscapes GC (paper)", "spade", _CITY, "32_32_48_32_32_32_32_24", 20.4, 31.7),
    ("GauGAN Cityscapes GC (retrained)", "spade", _CITY, "32_40_40_32_40_24_32_24", 21.0, 31.2),
    ("GauGAN Cityscapes Fast", "spade", _CITY, "32_32_32_48_32_24_24_32", 20.2, 31.3),
    ("GauGAN COCO-Stuff Fast", "spade", _COCO, "40_32_32_40_32_40_24_24", 26.0, 35.5),
    ("MUNIT edges→shoes Fast", "munit", _MOBILE, "16_16_16_24_56_16_40_40_32_24", 1.10, 2.63),
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
        params = f"{row['published_params_M']}M" if row["published_params_M"] else "–"
        pub = f"{params} / {row['published_macs_G']}G" if row["published_macs_G"] else f"{params} / –"
        shape = "×".join(str(s) for s in row["input_shape"])
        print(
            f"| {row['name']} | {shape} | {row['params'] / 1e6:.3f}M | {row['macs_paper'] / 1e9:.2f}G | "
            f"{row['macs_true'] / 1e9:.2f}G | {pub} |"
        )
    released = []
    for name, family, options, arch, pub_params, pub_macs in RELEASED:
        with torch.device("meta"):
            g = create_generator(family, arch=arch, **options)
        r = profile_generator(g)
        released.append(
            {
                "name": name,
                "family": family,
                "arch": arch,
                "options": options,
                "params": r.params,
                "macs_paper": r.macs_paper,
                "macs_paper_with_norm": r.macs_paper + r.norm_elements,
                "published_params_M": pub_params,
                "published_macs_G": pub_macs,
            }
        )
    print(
        "\n| released model | string | params | MACs (paper) | MACs (paper + norms) | README params / MACs |"
    )
    print("|---|---|---|---|---|---|")
    for row in released:
        print(
            f"| {row['name']} | `{row['arch']}` | {row['params'] / 1e6:.3f}M | {row['macs_paper'] / 1e9:.2f}G | "
            f"{row['macs_paper_with_norm'] / 1e9:.2f}G | {row['published_params_M']}M / {row['published_macs_G']}G |"
        )
    meta = {"torch": torch.__version__, "python": platform.python_version(), "device": "meta (shapes only)"}
    print(f"\ntorch {meta['torch']}, python {meta['python']}; batch 1; counted on the meta device")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows, "released": released}, fh, indent=2)


if __name__ == "__main__":
    main()
