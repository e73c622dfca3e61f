"""Every deploy-time rewrite keeps the generator's function (outputs equal up to float rounding)."""

import pytest
import torch
from torch import nn

from gancompress.errors import ConfigError
from gancompress.export.rewrite import (
    DEFAULT_REWRITES,
    REWRITES,
    RUNTIME_REWRITES,
    FixedInstanceNorm2d,
    PixelShuffleConvTranspose2d,
    PrimitiveInstanceNorm2d,
    SlicedReflectConv2d,
    SpaceToDepthConv2d,
    apply_rewrites,
    deploy,
    deploy_module,
    example_inputs,
    reflect_pad_slices,
)
from gancompress.layers.elastic import ElasticConv2d, ElasticConvTranspose2d
from gancompress.models import create_generator
from tiny import TINY_GENERATORS, family_of


def _tiny(key):
    g = create_generator(family_of(key), **TINY_GENERATORS[key]).eval()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return g


def _run(module, g, inputs):
    with torch.no_grad():
        return module(*inputs)


def _reference(g, inputs):
    with torch.no_grad():
        if g.family == "munit":
            return g.decode(g.encode_content(inputs[0]), inputs[1])
        return g(inputs[0])


@pytest.mark.parametrize("key", sorted(TINY_GENERATORS))
def test_deploy_module_has_no_elastic_layers_and_same_output(key):
    g = _tiny(key)
    module = deploy_module(g)
    assert not any(isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)) for m in module.modules())
    inputs = example_inputs(g, None if g.family == "spade" else (32, 32), batch=2)
    torch.testing.assert_close(_run(module, g, inputs), _reference(g, inputs), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rewrite", REWRITES)
@pytest.mark.parametrize("key", ["resnet", "resnet_separable", "unet", "munit"])
def test_each_rewrite_keeps_the_output(key, rewrite):
    g = _tiny(key)
    inputs = example_inputs(g, (32, 32), batch=2)
    module = apply_rewrites(deploy_module(g), (rewrite,))
    torch.testing.assert_close(_run(module, g, inputs), _reference(g, inputs), atol=1e-4, rtol=1e-4)


def test_rewrites_change_the_graph_where_they_apply():
    g = _tiny("resnet_separable")
    module = deploy(g, DEFAULT_REWRITES)
    kinds = [type(m) for m in module.modules()]
    assert kinds.count(PixelShuffleConvTranspose2d) == 2  # both upsamplings
    # the 7×7 convs with fewer than 16 outputs: the head (3) and, at this tiny width, the stem (8)
    assert kinds.count(SpaceToDepthConv2d) == 2 and isinstance(module.generator.head, SpaceToDepthConv2d)
    # a stem with 16 outputs keeps its plain form: its 3 *inputs* waste no vector lanes
    wide = deploy(create_generator("resnet", base_width=16, separable=True).eval(), DEFAULT_REWRITES)
    assert [type(m) for m in wide.modules()].count(SpaceToDepthConv2d) == 1
    # every conv feeding an instance norm lost its bias; the head (feeding tanh) kept it
    assert module.generator.stem_norm.__class__ is FixedInstanceNorm2d
    assert all(b.conv1.pointwise.bias is None for b in module.generator.blocks)
    assert module.generator.head.bias is not None
    unet = deploy(_tiny("unet"), ("convt_pixelshuffle",))
    assert any(isinstance(m, PixelShuffleConvTranspose2d) for m in unet.modules())  # k4/s2/p1 too


@pytest.mark.parametrize("size", [(9, 11), (16, 16), (7, 20)])
@pytest.mark.parametrize("mode", ["reflect", "zeros", "replicate"])
def test_space_to_depth_conv_odd_sizes_and_padding_modes(size, mode):
    conv = nn.Conv2d(5, 3, 7, padding=3, padding_mode=mode).eval()
    x = torch.randn(2, 5, *size)
    with torch.no_grad():
        torch.testing.assert_close(SpaceToDepthConv2d(conv)(x), conv(x), atol=1e-5, rtol=1e-4)
    unpadded = nn.Conv2d(4, 2, 5).eval()
    x = torch.randn(1, 4, 13, 10)
    with torch.no_grad():
        torch.testing.assert_close(SpaceToDepthConv2d(unpadded)(x), unpadded(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("k,p,op", [(3, 1, 1), (4, 1, 0), (2, 0, 0)])
def test_pixelshuffle_convtranspose_matches(k, p, op):
    convt = nn.ConvTranspose2d(6, 4, k, stride=2, padding=p, output_padding=op).eval()
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(PixelShuffleConvTranspose2d(convt)(x), convt(x), atol=1e-5, rtol=1e-4)


def test_pixelshuffle_rejects_transposed_convs_that_do_not_scale_exactly():
    with pytest.raises(ConfigError, match="does not scale"):
        PixelShuffleConvTranspose2d(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1))


def test_unknown_rewrite_names_the_known_ones():
    with pytest.raises(ConfigError, match="convt_pixelshuffle"):
        apply_rewrites(deploy_module(_tiny("resnet")), ("fuse_everything",))


def test_instance_norm_matches_torch_in_both_memory_layouts():
    x = torch.randn(2, 6, 9, 7)
    weight, bias = torch.rand(6) + 0.5, torch.randn(6)
    norm = FixedInstanceNorm2d(6, 1e-5, weight, bias)
    ref = nn.functional.instance_norm(x, weight=weight, bias=bias)
    torch.testing.assert_close(norm(x), ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        norm(x.contiguous(memory_format=torch.channels_last)), ref, atol=1e-5, rtol=1e-4
    )


def test_exported_phase_moves_are_single_blocks_first_nodes(tmp_path):
    """SpaceToDepth / DepthToSpace (DCR) nodes, not reshape-transpose chains, and the same output."""
    import onnx

    from gancompress.export.onnx import export_onnx, ort_session, run_session

    g = _tiny("resnet_separable")
    path = export_onnx(g, tmp_path / "g.onnx", rewrites=DEFAULT_REWRITES)
    nodes = onnx.load(str(path)).graph.node
    d2s = [n for n in nodes if n.op_type == "DepthToSpace"]
    assert [n.op_type for n in nodes].count("SpaceToDepth") == 2 and len(d2s) == 4  # stem, head, 2 up
    assert all(
        onnx.helper.get_attribute_value(a) == b"DCR" for n in d2s for a in n.attribute if a.name == "mode"
    )
    assert not any(n.op_type == "Transpose" and len(n.attribute[0].ints) == 6 for n in nodes)
    x = torch.randn(2, 3, 40, 36)
    with torch.no_grad():
        torch.testing.assert_close(run_session(ort_session(path), x), g(x), atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("pad", [(3, 3, 3, 3), (1, 2, 0, 1), (0, 0, 2, 2)])
def test_reflect_pad_slices_is_bit_exact(pad):
    x = torch.randn(2, 3, 6, 7)
    assert torch.equal(reflect_pad_slices(x, pad), nn.functional.pad(x, pad, mode="reflect"))
    with pytest.raises(ConfigError, match="reflection padding"):
        reflect_pad_slices(torch.randn(1, 1, 2, 2), (2, 2, 2, 2))


def test_mobile_rewrites_replace_every_norm_and_reflection_pad_and_keep_the_output():
    g = _tiny("resnet_separable")
    rewrites = RUNTIME_REWRITES["executorch"]
    module = deploy(g, rewrites)
    kinds = [type(m) for m in module.modules()]
    assert FixedInstanceNorm2d not in kinds and kinds.count(PrimitiveInstanceNorm2d) == 5 + 4 * len(g.blocks)
    # stem and head went through space_to_depth, which then pads by slices; the blocks' 3x3 convs too
    s2d = [m for m in module.modules() if isinstance(m, SpaceToDepthConv2d)]
    assert len(s2d) == 2 and all(m.padding_mode == "reflect_slices" for m in s2d)
    assert kinds.count(SlicedReflectConv2d) == 2 * len(g.blocks)
    # the order they are named in does not matter
    reordered = deploy(g, tuple(reversed(rewrites)))
    inputs = example_inputs(g, (32, 32), batch=2)
    reference = _reference(g, inputs)
    for m in (module, reordered):
        torch.testing.assert_close(_run(m, g, inputs), reference, atol=1e-4, rtol=1e-4)
