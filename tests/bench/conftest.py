import pytest


@pytest.fixture(scope="session")
def fonts32(tmp_path_factory):
    """A tiny paired glyph dataset (32 px, 40 characters): real images for int8 calibration."""
    from gancompress.data import build_font_dataset

    return build_font_dataset(tmp_path_factory.mktemp("fonts") / "paired", size=32, max_chars=40, seed=3)
