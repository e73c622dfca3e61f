"""The FID Inception-v3: where its weights are looked for, and what a wrong file says."""

import pytest
import torch

from gancompress.errors import CheckpointError
from gancompress.metrics.extractors import create_extractor
from gancompress.metrics.inception import (
    WEIGHTS_NAME,
    FIDInceptionV3,
    inception_weight_candidates,
    load_fid_inception,
)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANCOMPRESS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path


def test_missing_weights_name_the_file_and_every_place(no_weights):
    with pytest.raises(CheckpointError) as err:
        load_fid_inception()
    message = str(err.value)
    assert WEIGHTS_NAME in message and str(no_weights / "hub" / "checkpoints") in message
    assert str(no_weights / "cache" / "weights") in message and "'vgg'" in message
    with pytest.raises(CheckpointError, match=f"do not exist \\(expected the file {WEIGHTS_NAME}\\)"):
        load_fid_inception(no_weights / "elsewhere.pth")


def test_search_order_explicit_env_hub_cache(no_weights, monkeypatch):
    monkeypatch.setenv("GANCOMPRESS_INCEPTION_WEIGHTS", str(no_weights / "env.pth"))
    places = inception_weight_candidates(no_weights / "given.pth")
    assert places == [
        no_weights / "given.pth",
        no_weights / "env.pth",
        no_weights / "hub" / "checkpoints" / WEIGHTS_NAME,
        no_weights / "cache" / "weights" / WEIGHTS_NAME,
    ]


def test_wrong_file_is_named(no_weights):
    path = no_weights / "hub" / "checkpoints" / WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="is not the FID Inception-v3"):
        create_extractor("inception")
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=f"cannot read FID Inception weights {path}"):
        load_fid_inception()


def test_state_dict_keys_load_strictly_and_pool3_is_2048(no_weights):
    net = FIDInceptionV3().eval()
    path = no_weights / WEIGHTS_NAME
    # Only the key layout matters here: the real file has exactly these names and shapes.
    torch.save({k: v for k, v in net.state_dict().items()}, path)
    loaded = load_fid_inception(path)
    assert loaded.name == "inception-v3-fid" and not any(p.requires_grad for p in loaded.parameters())
    with torch.no_grad():
        assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 2048)
