import pytest
from hypothesis import given
from hypothesis import strategies as st

from gancompress.arch import ArchSpec
from gancompress.errors import ArchSpecError


@given(st.lists(st.integers(min_value=1, max_value=512), min_size=1, max_size=12))
def test_string_round_trip(widths):
    spec = ArchSpec("resnet", tuple(widths))
    assert ArchSpec.parse("resnet", str(spec)) == spec
    assert ArchSpec.from_dict(spec.to_dict()) == spec


def test_released_string():
    spec = ArchSpec.parse("resnet", "16_16_32_16_32_32_16_16")
    assert spec.widths == (16, 16, 32, 16, 32, 32, 16, 16)


@pytest.mark.parametrize("text", ["", "16__32", "a_b", "16_-1", "16_0", "1.5_2"])
def test_malformed_strings(text):
    with pytest.raises(ArchSpecError):
        ArchSpec.parse("resnet", text)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"family": "resnet"},
        {"family": "resnet", "widths": "16"},
        {"family": "", "widths": [1]},
        {"family": "resnet", "widths": [1, True]},
    ],
)
def test_malformed_dicts(data):
    with pytest.raises(ArchSpecError):
        ArchSpec.from_dict(data)
