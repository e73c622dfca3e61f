import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# The suite runs on small shared CPUs: judge examples by their result, not by how fast they came.
settings.register_profile(
    "gancompress",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile("gancompress")

# Tiny configurations of every family: widths of 2-8 channels and 32-px inputs keep the suite fast.
TINY_GENERATORS = {
    "resnet": dict(base_width=8),
    "resnet_separable": dict(base_width=8, separable=True),
    "unet": dict(base_width=4, num_downs=5),
    "spade": dict(preset=None, label_channels=5, base_width=2, size=(32, 32), num_upsampling_layers="normal"),
    "spade_more": dict(
        preset=None, label_channels=5, base_width=2, size=(64, 64), num_upsampling_layers="more"
    ),
    "munit": dict(base_width=4, style_downsample=3, mlp_dim=16),
}


def family_of(key: str) -> str:
    return key.split("_")[0]


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
