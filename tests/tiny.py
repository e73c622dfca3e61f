"""Tiny configurations shared by the tests (a plain module, not a conftest, so names never clash)."""

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
    "inception": dict(base_width=4, num_blocks=3, kernel_sizes=(1, 3)),
}


def family_of(key: str) -> str:
    return key.split("_")[0]
