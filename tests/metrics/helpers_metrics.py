"""Small extractors and generators for the metrics tests (a plain module, so names never clash)."""

import json

import torch
from safetensors.torch import save_file
from torch import nn

from gancompress.metrics.domain import ARCH, build_classifier

TINY_ARCH = {"name": ARCH, "in_size": 16, "widths": [4, 4, 4], "feature_dim": 8, "heads": {"class": 3}}


def write_domain_extractor(folder, name="tiny", *, confident_class=None, info=None):
    """A domain extractor file pair as the training script writes it; ``confident_class`` makes its
    head predict that class with probability ~1 on any image."""
    torch.manual_seed(0)
    model = build_classifier(TINY_ARCH).eval()
    if confident_class is not None:
        with torch.no_grad():
            head = model.heads["class"]
            head.weight.zero_()
            head.bias.fill_(-20.0)
            head.bias[confident_class] = 20.0
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}.safetensors"))
    meta = {
        "name": name,
        "arch": TINY_ARCH,
        "content": "target_class",
        "content_head": "class",
        "classes": ["a", "b", "c"],
        "accuracy": {},
        **(info or {}),
    }
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder / f"{name}.json"


class Identity(nn.Module):
    """A "generator" that returns its input: on a dataset whose B equals A it is perfect."""

    def forward(self, x):
        return x


class MeanPool(nn.Module):
    """A fixed feature extractor: per-channel means and standard deviations (6 features)."""

    name = "meanpool"
    num_features = 6

    def forward(self, images):
        return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], 1)
