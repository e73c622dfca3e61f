"""Fuzzing of the loaders that read user files: whatever the bytes, the only errors are our own."""

import json
import string
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gancompress.arch import ArchSpec
from gancompress.config import apply_overrides, from_dict
from gancompress.errors import GanCompressError
from gancompress.export.saved import load_generator, save_generator
from gancompress.models import create_generator

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Optim:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


@dataclass(frozen=True)
class Recipe:
    name: str = "x"
    steps: int = 10
    flip: bool = True
    optim: Optim = Optim()
    arch: str | None = None


@given(
    st.dictionaries(
        st.sampled_from(["name", "steps", "flip", "optim", "arch", "other"]), json_values, max_size=5
    )
)
def test_config_from_dict_only_raises_config_errors(data):
    try:
        recipe = from_dict(Recipe, data, "recipe.yaml")
    except GanCompressError as exc:
        assert "recipe.yaml" in str(exc)
    else:
        assert isinstance(recipe.steps, int) and isinstance(recipe.flip, bool)


@given(st.lists(st.text(alphabet=string.ascii_letters + "._=-[]0123456789 ", max_size=20), max_size=4))
def test_overrides_only_raise_config_errors(overrides):
    try:
        out = apply_overrides({"optim": {"lr": 1.0}}, overrides)
    except GanCompressError:
        return
    assert isinstance(out, dict)


@given(st.text(max_size=40))
def test_archspec_parse_only_raises_arch_errors(text):
    try:
        spec = ArchSpec.parse("resnet", text)
    except GanCompressError:
        return
    assert all(w > 0 for w in spec.widths)
    assert str(spec) == "_".join(str(w) for w in spec.widths)


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "g"
    save_generator(create_generator("resnet", base_width=2, num_blocks=3), path)
    return path


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(config=json_values)
def test_saved_config_fuzz(tmp_path_factory, saved_dir, config):
    target = tmp_path_factory.mktemp("fuzz") / "g"
    target.mkdir()
    (target / "model.safetensors").write_bytes((saved_dir / "model.safetensors").read_bytes())
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(GanCompressError):
        load_generator(target)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(cut=st.integers(0, 4000), noise=st.binary(max_size=64))
def test_saved_weights_fuzz(tmp_path_factory, saved_dir, cut, noise):
    target = tmp_path_factory.mktemp("fuzz") / "g"
    target.mkdir()
    (target / "config.json").write_text((saved_dir / "config.json").read_text())
    data = (saved_dir / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[:cut] + noise)
    try:
        g = load_generator(target)
    except GanCompressError:
        return
    assert g.family == "resnet"  # a mutation that still parses must load into the right network
