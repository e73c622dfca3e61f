"""Train the domain extractors shipped in ``src/gancompress/assets/extractors`` (CPU, minutes).

- ``fonts``: glyph identity over every character of the embedded font dataset, plus a font-face head.
  Trained on real renderings of those characters in 15 faces (all of matplotlib's DejaVu and STIX
  text faces except one held out), random scale and shift. Test characters are in the class list on
  purpose: the classifier sees real glyphs of them, never a generated one, so it can judge whether a
  generator drew the right character for a character it never trained on. The face head makes the
  penultimate features style-aware, so they also work as a domain-FID space.
- ``fashion``: the 10 Fashion-MNIST classes, trained on its 60k training images (needs the Debian
  package dataset-fashion-mnist); content accuracy = share of generated images of the target class.
- ``labels2sat``: a small U-Net segmenting satellite tiles into the dataset's 7 label classes, trained
  on its training tiles and scored (mIoU) on the held-out longitude band; written to ``assets/segmenters``.

Usage: python scripts/train_domain_extractors.py fonts [fashion] [labels2sat --data DIR] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from gancompress.data.fonts import SOURCE_FONT, TARGET_FONT, render_shared_glyphs
from gancompress.data.glyphs import font_codepoints, mpl_font_dir, render_glyph
from gancompress.metrics.domain import ARCH, build_classifier

OUT = Path(__file__).resolve().parents[1] / "src" / "gancompress" / "assets" / "extractors"
TRAIN_FACES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)  # fmt: skip
HELD_OUT_FACE = "DejaVuSerif-Italic.ttf"
GLYPH_SIZE = 64  # the embedded dataset's default size; the classifier itself sees 32 px


def render_augmented(
    face: Path, cp: int, rng: random.Random, sizes: tuple[int, ...] = (GLYPH_SIZE,)
) -> np.ndarray | None:
    """One real rendering with a random em size and shift, as a generator's slightly-off output might
    be, drawn at one of ``sizes`` px and resized to 64 (small renderings are hinted thicker than
    downscaled large ones, so several sizes make the classifier read glyph datasets of any size)."""
    em = rng.uniform(0.6, 0.76)
    px = rng.choice(sizes) if len(sizes) > 1 else sizes[0]
    arr = render_glyph(face, chr(cp), px, em=em)
    if arr is None:
        return None
    if px != GLYPH_SIZE:
        arr = np.asarray(Image.fromarray(arr).resize((GLYPH_SIZE, GLYPH_SIZE), Image.BICUBIC))
    dx, dy = rng.randint(-4, 4), rng.randint(-3, 3)
    return np.asarray(
        Image.fromarray(arr).transform(arr.shape[::-1], Image.AFFINE, (1, 0, -dx, 0, 1, -dy), fillcolor=255)
    )


def to_batch(arrs: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(arrs)).float().div(127.5).sub(1).unsqueeze(1)
    return x.expand(-1, 3, -1, -1)


def fit(
    model, x: torch.Tensor, targets: dict[str, torch.Tensor], epochs: int, batch: int = 128, lr: float = 3e-3
):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            out = model(x[idx])
            loss = sum(F.cross_entropy(out[k], t[idx]) for k, t in targets.items())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1}/{epochs} loss {total / len(x):.4f}", flush=True)
    return model.eval()


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, head: str) -> float:
    pred = torch.cat([model(x[i : i + 512])[head].argmax(1) for i in range(0, len(x), 512)])
    return float((pred == y).float().mean())


def save(model, info: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().half().contiguous() for k, v in model.state_dict().items() if v.is_floating_point()
    }
    state.update({k: v for k, v in model.state_dict().items() if not v.is_floating_point()})
    save_file(state, str(out / f"{info['name']}.safetensors"))
    info["torch"] = torch.__version__
    info["bytes"] = (out / f"{info['name']}.safetensors").stat().st_size
    (out / f"{info['name']}.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out / info['name']}.safetensors ({info['bytes'] / 1024:.0f} KiB)")


def train_fonts(epochs: int, copies: int, out: Path, sizes: tuple[int, ...] = (GLYPH_SIZE,)) -> None:
    fdir = mpl_font_dir()
    classes = list(render_shared_glyphs(fdir / SOURCE_FONT, fdir / TARGET_FONT, GLYPH_SIZE).codepoints)
    class_of = {cp: i for i, cp in enumerate(classes)}
    rng = random.Random(0)
    xs, ys, fs = [], [], []
    for f_i, face in enumerate(TRAIN_FACES):
        covered = font_codepoints(fdir / face)
        for cp in classes:
            if cp not in covered:
                continue
            for _ in range(copies):
                arr = render_augmented(fdir / face, cp, rng, sizes)
                if arr is not None:
                    xs.append(arr), ys.append(class_of[cp]), fs.append(f_i)
    x, y, f = to_batch(xs), torch.tensor(ys), torch.tensor(fs)
    print(f"fonts: {len(classes)} characters, {len(x)} training glyphs from {len(TRAIN_FACES)} faces")
    arch = {"name": ARCH, "in_size": 32, "widths": [24, 48, 96], "feature_dim": 128,
            "heads": {"char": len(classes), "font": len(TRAIN_FACES)}}  # fmt: skip
    torch.manual_seed(0)
    model = fit(build_classifier(arch), x, {"char": y, "font": f}, epochs)
    # Held-out real images: fresh random renderings (other seed) of the target face and the source face,
    # the untransformed target glyphs, and a face never seen in training.
    heldout = {}
    eval_rng = random.Random(12345)
    for label, face in (
        ("target_face_augmented", TARGET_FONT),
        ("source_face_augmented", SOURCE_FONT),
        ("unseen_face_" + HELD_OUT_FACE, HELD_OUT_FACE),
    ):
        covered = font_codepoints(fdir / face)
        pairs = [
            (render_augmented(fdir / face, cp, eval_rng), class_of[cp]) for cp in classes if cp in covered
        ]
        pairs = [(a, c) for a, c in pairs if a is not None]
        heldout[label] = accuracy(
            model, to_batch([a for a, _ in pairs]), torch.tensor([c for _, c in pairs]), "char"
        )
    for px in (32, GLYPH_SIZE, 128):
        # The target glyphs exactly as a dataset of that size holds them (only those that fit at every size).
        plain = [render_glyph(fdir / TARGET_FONT, chr(cp), px) for cp in classes]
        keep = [i for i, a in enumerate(plain) if a is not None]
        batch = to_batch(
            [
                np.asarray(Image.fromarray(plain[i]).resize((GLYPH_SIZE, GLYPH_SIZE), Image.BICUBIC))
                for i in keep
            ]
        )
        heldout[f"target_face_plain_{px}px"] = accuracy(model, batch, torch.tensor(keep), "char")
    print("fonts held-out accuracy:", json.dumps(heldout, indent=1))
    save(model, {
        "name": "fonts",
        "arch": arch,
        "content": "glyph",
        "content_head": "char",
        "content_description": "glyph identity: the generated glyph is classified as the character it was generated from",
        "classes": classes,
        "font_head_classes": list(TRAIN_FACES),
        "dataset": {"name": "fonts", "source_font": SOURCE_FONT, "target_font": TARGET_FONT, "glyph_size": GLYPH_SIZE,
                    "training_data": f"real renderings of all {len(classes)} characters in {len(TRAIN_FACES)} matplotlib faces, "
                                     f"{copies} random scale/shift copies each rendered at {list(sizes)} px; {HELD_OUT_FACE} held out"},
        "accuracy": heldout,
        "epochs": epochs,
        "seed": 0,
        "trained_by": "scripts/train_domain_extractors.py fonts",
    }, out)  # fmt: skip


def train_fashion(epochs: int, out: Path) -> None:
    from gancompress.data.prepare.fashion import FASHION_CLASSES, load_fashion_mnist

    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")

    def prep(arr, invert):  # 28 px garments, padded to 32 as the prepared dataset does
        padded = np.pad(arr, ((0, 0), (2, 2), (2, 2)))
        return to_batch(list(255 - padded if invert else padded))

    arch = {"name": ARCH, "in_size": 32, "widths": [24, 48, 96], "feature_dim": 128, "heads": {"class": 10}}
    torch.manual_seed(0)
    # Both polarities: the prepared dataset draws garments dark on white by default (invert=True) and
    # white on black with invert=false; random flips as the CycleGAN pipeline applies.
    xt = prep(x_train, invert=False)
    invert = torch.rand(len(xt)) < 0.5
    xt = torch.where(invert[:, None, None, None], -xt, xt)
    flip = torch.rand(len(xt)) < 0.5
    xt = torch.where(flip[:, None, None, None], xt.flip(-1), xt)
    model = fit(build_classifier(arch), xt, {"class": torch.from_numpy(y_train).long()}, epochs, batch=256)
    y = torch.from_numpy(y_test).long()
    acc = {
        "fashion_mnist_test_10k_dark_on_white": accuracy(model, prep(x_test, invert=True), y, "class"),
        "fashion_mnist_test_10k_original": accuracy(model, prep(x_test, invert=False), y, "class"),
    }
    print(f"fashion test accuracy (10k real held-out images): {acc}")
    save(model, {
        "name": "fashion",
        "arch": arch,
        "content": "target_class",
        "content_head": "class",
        "content_description": "share of generated images classified as the target domain's class",
        "classes": list(FASHION_CLASSES),
        "dataset": {"name": "fashion-mnist", "training_data": "the 60,000 Fashion-MNIST training images, padded to 32 px, "
                    "half of them inverted (dark on white, as 'gancompress data prepare fashion' draws them), random flips"},
        "accuracy": acc,
        "epochs": epochs,
        "seed": 0,
        "trained_by": "scripts/train_domain_extractors.py fashion",
    }, out)  # fmt: skip


def train_labels2sat(epochs: int, data: Path | None, out: Path) -> None:
    """The labels2sat segmenter: satellite tile → the 7 label classes, trained on the training tiles."""
    from torch.utils.data import DataLoader

    from gancompress.data import TransformConfig, build_dataset, read_metadata
    from gancompress.metrics.segmentation import ARCH as SEG_ARCH
    from gancompress.metrics.segmentation import build_segmentation_net, confusion_matrix, mean_iou

    if data is None:
        raise SystemExit(
            "labels2sat needs --data DIR (made by 'gancompress data prepare labels2sat --out DIR')"
        )
    info = read_metadata(data) or {}
    num_classes = int(info["num_classes"])
    size = 128  # a quarter of the tiles' pixels: coastlines and relief zones are still resolved

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        ds = build_dataset(data, "semantic", split, TransformConfig.for_eval(size), use_instance=False)
        xs, ys = [], []
        for batch in DataLoader(ds, batch_size=64):
            xs.append(batch["image"])
            ys.append(batch["label"][:, :num_classes].argmax(1))
        return torch.cat(xs), torch.cat(ys)

    x_train, y_train = load("train")
    x_test, y_test = load("test")
    print(f"labels2sat: {len(x_train)} training tiles, {len(x_test)} held-out tiles, {num_classes} classes")
    arch = {"name": SEG_ARCH, "in_size": size, "widths": [16, 32, 64, 96], "num_classes": num_classes}
    torch.manual_seed(0)
    model = build_segmentation_net(arch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 16
    steps = epochs * ((len(x_train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(x_train), batch):
            idx = perm[i : i + batch]
            xb, yb = x_train[idx], y_train[idx]
            if torch.rand(1, generator=gen).item() < 0.5:  # the training pipeline flips tiles
                xb, yb = xb.flip(-1), yb.flip(-1)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1}/{epochs} loss {total / len(x_train):.4f}", flush=True)
    model.eval()
    conf = np.zeros((num_classes, num_classes), np.int64)
    with torch.no_grad():
        for i in range(0, len(x_test), 32):
            conf += confusion_matrix(model(x_test[i : i + 32]).argmax(1), y_test[i : i + 32], num_classes)
    miou, per_class = mean_iou(conf)
    pixel_acc = float(np.trace(conf) / conf.sum())
    print(f"labels2sat held-out (test longitude band) mIoU {miou:.4f}, pixel accuracy {pixel_acc:.4f}")
    save(model, {
        "name": "labels2sat",
        "kind": "segmenter",
        "arch": arch,
        "classes": list(info.get("class_names", range(num_classes))),
        "dataset": {"name": "labels2sat", "training_data": f"{len(x_train)} training tiles of labels2sat at {size} px, "
                    f"test longitude band {info.get('test_longitude_band')} held out", "counts": info.get("counts")},
        "accuracy": {"heldout_miou": miou, "heldout_pixel_accuracy": pixel_acc, "heldout_per_class_iou": per_class},
        "epochs": epochs,
        "seed": 0,
        "trained_by": "scripts/train_domain_extractors.py labels2sat --data DIR",
    }, out.parent / "segmenters")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+", choices=("fonts", "fashion", "labels2sat"))
    parser.add_argument(
        "--epochs", type=int, help="default: fonts 10, fashion 2, labels2sat 5 (the shipped ones)"
    )
    parser.add_argument("--data", type=Path, help="labels2sat: the prepared dataset folder")
    parser.add_argument(
        "--copies", type=int, default=4, help="fonts: augmented renderings per character and face"
    )
    parser.add_argument(
        "--render-sizes",
        default=str(GLYPH_SIZE),
        help="fonts: comma-separated glyph rendering sizes of the training copies (default 64, the "
        "shipped extractor; e.g. 32,48,64,96 for glyph datasets below 48 px, with more epochs)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.names:
        start = time.perf_counter()
        if name == "fonts":
            sizes = tuple(int(v) for v in args.render_sizes.split(","))
            train_fonts(args.epochs or 10, args.copies, args.out, sizes)
        elif name == "fashion":
            train_fashion(args.epochs or 2, args.out)
        else:
            train_labels2sat(args.epochs or 5, args.data, args.out)
        print(f"{name}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
