"""How far FID on a small test set can be trusted: a paired bootstrap of FID differences between generators.

    python bench/fid_bootstrap.py GEN_DIR [GEN_DIR ...] [--data builtin:fonts | DIR] [--size PX] [--extractor domain]
                                  [--resamples 200] [--threads N] [--out runs/bench/fid_bootstrap.json]

Every generator translates the paired test split (A → B); its features and the real B images' are taken
with one extractor (``domain``: the dataset's domain feature space, ``vgg``: HED's VGG16, ...), at
``--size`` px (default: the dataset's own; the generators must have been trained at it). Printed
and written to JSON:

- the FID of each generator against the real test images, as ``gancompress evaluate`` reports it;
- its bootstrap spread: FID on ``--resamples`` resamples (with replacement) of the test images;
- for each generator after the first, the paired bootstrap of FID(generator) − FID(first): the same
  resampled images for both, so the shared noise cancels; a 95 % interval that excludes 0 means the
  difference is not small-sample noise;
- a reference: FID of real training images (disjoint from the test set, same count) against the real
  test images, three draws;
- with ``--degradations``, what the extractor responds to: the same training draws and the test
  images themselves blurred to a quarter of their resolution, the test images with Gaussian noise
  (σ 0.1) and in gray, and the input images copied unchanged (A as if it were B).

The resampling is written here: FID on a resample is a pure function of the features (scipy's sqrtm
through ``gancompress.metrics.fid``), and no library bootstraps FID differences.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gancompress.data import TransformConfig, build_dataset, ensure_builtin_dataset, read_metadata
from gancompress.export.saved import load_generator
from gancompress.metrics.extractors import create_extractor, extractor_name
from gancompress.metrics.fid import FeatureStats, fid_from_stats
from gancompress.utils.files import atomic_write_json


def features(extractor: torch.nn.Module, images: torch.Tensor, batch: int = 32) -> np.ndarray:
    with torch.no_grad():
        return (
            torch.cat([extractor(images[i : i + batch]) for i in range(0, len(images), batch)])
            .double()
            .numpy()
        )


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    return fid_from_stats(
        FeatureStats.from_features(torch.from_numpy(real)), FeatureStats.from_features(torch.from_numpy(fake))
    )


def translate(path: str, images: torch.Tensor) -> torch.Tensor:
    """The generator's outputs, rounded to 8-bit levels as saved images would be (as the evaluator does)."""
    loaded = load_generator(path)
    generator = loaded[0] if isinstance(loaded, tuple) else loaded
    with torch.no_grad():
        out = generator.eval()(images)
    return ((out.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "generators", nargs="+", help="saved generator directories; the first is the reference"
    )
    parser.add_argument("--data", default="builtin:fonts", help="paired dataset root, or builtin:fonts")
    parser.add_argument("--size", type=int, help="image size in px (default: the dataset's)")
    parser.add_argument("--extractor", default="domain")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--degradations", action="store_true", help="also score degraded real images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", default="runs/bench/fid_bootstrap.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = ensure_builtin_dataset("fonts") if args.data == "builtin:fonts" else Path(args.data)
    info = read_metadata(root) or {}
    size = args.size or int(info.get("size") or 256)
    test = build_dataset(root, "paired", "test", TransformConfig.for_eval(size))
    train = build_dataset(root, "paired", "train", TransformConfig.for_eval(size))
    n = len(test)
    a = torch.stack([test[i]["A"] for i in range(n)])
    real = torch.stack([test[i]["B"] for i in range(n)])
    extractor = create_extractor(args.extractor, dataset_info=info).eval()
    rng = np.random.default_rng(args.seed)
    real_f = features(extractor, real)

    draws = rng.choice(len(train), size=min(3 * n, len(train)), replace=False)
    train_b = torch.stack([train[int(i)]["B"] for i in draws])
    train_f = features(extractor, train_b)
    reference = [fid(real_f, train_f[k * n : (k + 1) * n]) for k in range(len(draws) // n)]

    fakes = {p: features(extractor, translate(p, a)) for p in args.generators}
    resamples = [rng.choice(n, n, replace=True) for _ in range(args.resamples)]
    rows = {}
    first = args.generators[0]
    for p, f in fakes.items():
        boot = np.array([fid(real_f[i], f[i]) for i in resamples])
        row = {
            "fid": fid(real_f, f),
            "bootstrap_mean": float(boot.mean()),
            "bootstrap_std": float(boot.std()),
        }
        if p != first:
            diff = np.array([fid(real_f[i], f[i]) - fid(real_f[i], fakes[first][i]) for i in resamples])
            lo, hi = np.percentile(diff, [2.5, 97.5])
            row["minus_first"] = {
                "fid": row["fid"] - fid(real_f, fakes[first]),
                "mean": float(diff.mean()),
                "ci95": [float(lo), float(hi)],
            }
        rows[p] = row
        extra = ""
        if "minus_first" in row:
            m = row["minus_first"]
            extra = (
                f"  minus first: {m['fid']:+.1f} (bootstrap 95 % {m['ci95'][0]:+.1f} .. {m['ci95'][1]:+.1f})"
            )
        print(
            f"{p}: FID {row['fid']:.1f}, bootstrap {row['bootstrap_mean']:.1f} ± {row['bootstrap_std']:.1f}{extra}"
        )
    print(f"real training images vs real test images ({n} each): " + ", ".join(f"{v:.1f}" for v in reference))
    degraded = {}
    if args.degradations:

        def blur(x: torch.Tensor) -> torch.Tensor:
            small = F.interpolate(x, scale_factor=0.25, mode="area")
            return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)

        blur_f = features(extractor, blur(train_b))
        noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(args.seed))
        degraded = {
            "train_blurred_x4": [fid(real_f, blur_f[k * n : (k + 1) * n]) for k in range(len(draws) // n)],
            "test_blurred_x4": fid(real_f, features(extractor, blur(real))),
            "test_noise_0.1": fid(real_f, features(extractor, (real + 0.1 * noise).clamp(-1, 1))),
            "test_gray": fid(real_f, features(extractor, real.mean(1, keepdim=True).expand_as(real))),
            "input_copied": fid(real_f, features(extractor, a)),
        }
        for k, v in degraded.items():
            print(f"{k}: " + (", ".join(f"{x:.1f}" for x in v) if isinstance(v, list) else f"{v:.1f}"))
    result = {
        "command": "python bench/fid_bootstrap.py "
        + " ".join(args.generators)
        + f" --data {args.data} --size {size} --extractor {args.extractor} --resamples {args.resamples}"
        + (" --degradations" if args.degradations else ""),
        "data": str(root),
        "extractor": extractor_name(extractor),
        "size": size,
        "test_images": n,
        "resamples": args.resamples,
        "generators": rows,
        "real_train_vs_test": reference,
        "degraded_reals": degraded,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.machine(),
    }
    atomic_write_json(Path(args.out), result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
