import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_fonts(tmp_path_factory):
    """A tiny paired font dataset: 32 px, 40 characters (well under a second to build)."""
    from gancompress.data import build_font_dataset

    return build_font_dataset(tmp_path_factory.mktemp("fonts") / "paired", size=32, max_chars=40, seed=3)


@pytest.fixture(scope="session")
def tiny_fonts_unpaired(tmp_path_factory):
    from gancompress.data import build_font_dataset

    return build_font_dataset(
        tmp_path_factory.mktemp("fonts") / "unpaired", size=32, max_chars=40, paired=False
    )
