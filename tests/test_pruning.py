"""Channel pruning keeps coupled layers consistent: permuting is function-preserving, and removing
channels that are dead (zero producer and zero norm scale) does not change the output."""

import pytest
import torch

from gancompress.errors import ArchSpecError
from gancompress.models import create_generator
from gancompress.pruning import (
    channel_importance,
    coupled_tensors,
    permute_group_,
    prune_by_importance,
    prune_generator,
)
from tiny import TINY_GENERATORS, family_of


def _random(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key]).eval()
    for p in g.parameters():
        p.data.normal_(0, 0.3)
    return g


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_permutation_preserves_function(key):
    g = _random(key)
    x = g.example_input(batch=2)
    y = g(x)
    h = create_generator(family_of(key), **TINY_GENERATORS[key]).eval()
    h.load_state_dict(g.state_dict())
    for group in coupled_tensors(h):
        permute_group_(h, group, torch.randperm(h.channels()[group]))
    assert not torch.equal(
        h.state_dict()["head.weight" if "head.weight" in h.state_dict() else next(iter(h.state_dict()))],
        torch.zeros(1),
    )
    torch.testing.assert_close(h(x), y, rtol=1e-4, atol=1e-4)


def test_removing_dead_trunk_channels_is_exact():
    """Zero the trunk channels' every producer and norm scale: pruning them leaves the output unchanged."""
    g = create_generator("resnet", base_width=4, separable=True, norm_affine=True).eval()
    for p in g.parameters():
        p.data.normal_(0, 0.3)
    dead = torch.tensor([1, 5, 6, 9])
    state = g.state_dict()
    with torch.no_grad():
        for c in coupled_tensors(g)["trunk"]:
            if c.producer or c.key.endswith(
                (
                    "norm.weight",
                    "norm.bias",
                    "norm2.weight",
                    "norm2.bias",
                    "down2_norm.weight",
                    "down2_norm.bias",
                )
            ):
                state[c.key].index_fill_(c.dim, dead, 0.0)
    x = g.example_input(batch=2)
    keep = torch.tensor([i for i in range(16) if i not in dead.tolist()])
    small = prune_generator(g, {"trunk": keep})
    assert small.channels()["trunk"] == 12
    torch.testing.assert_close(small(x), g(x), rtol=1e-5, atol=1e-5)


def test_prune_by_importance_keeps_largest_filters():
    g = _random("resnet_separable")
    imp = channel_importance(g, "stem")
    small = prune_by_importance(g, "4_8_8_8_8_8_8_8")
    kept = small.stem.weight.abs().sum(dim=(1, 2, 3))
    top = torch.sort(imp, descending=True).values[:4]
    torch.testing.assert_close(torch.sort(kept, descending=True).values, top)


def test_prune_errors():
    g = _random("resnet")
    with pytest.raises(ArchSpecError, match="multiple of 4"):
        prune_generator(g, {"trunk": torch.arange(6)})
    with pytest.raises(ArchSpecError, match="distinct"):
        prune_generator(g, {"stem": torch.tensor([0, 0, 1, 2])})
