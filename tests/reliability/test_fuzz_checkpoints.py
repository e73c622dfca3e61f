"""Fuzzing of the state files a resumed run reads: whatever the bytes, the only errors are our own.

Training checkpoints (``model.safetensors``, ``state.safetensors``, ``state.json``) truncated, garbled
or structurally rewritten, read by ``load_checkpoint`` and by a resuming ``fit``; the search, MACs and
latency caches; CoroNetGAN's pruning target record; the demo's stage record; a teacher's saved
discriminator config; and crafted pickles wherever a ``.pth`` is accepted. Every failure must be a
:class:`GanCompressError` that names the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from gancompress.arch import ArchSpec
from gancompress.errors import CheckpointError, GanCompressError
from gancompress.training import fit
from gancompress.training.checkpoint import list_checkpoints, load_checkpoint

FUZZ = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


class Pairs(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        a = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(i))
        return {"A": a, "B": -a}


class Task(nn.Module):
    """G with BatchNorm and dropout (RNG state, buffers) and a D: two Adam optimizers to restore."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.g = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.2), nn.Conv2d(4, 3, 1)
        )
        self.d = nn.Conv2d(3, 1, 3)

    def configure_optimizers(self):
        return {"G": torch.optim.Adam(self.g.parameters()), "D": torch.optim.Adam(self.d.parameters())}

    def training_step(self, batch, step, optimizers):
        losses = {
            "D": lambda: self.d(batch["B"]).mean(),
            "G": lambda: (self.g(batch["A"]) - batch["B"]).abs().mean(),
        }
        logs = {}
        for name, loss in losses.items():
            optimizers[name].zero_grad()
            value = loss()
            value.backward()
            optimizers[name].step()
            logs[f"loss_{name}"] = float(value.detach())
        return logs

    def sample(self, batch):
        return self.g(batch["A"])

    def generator(self):
        return self.g


# any bytes (also invalid UTF-8), or any JSON document
GARBAGE = st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode()))
FIT = dict(batch_size=2, max_steps=2, checkpoint_every=2, progress=False, tensorboard=False, num_samples=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real two-step checkpoint of a Task with two Adam optimizers, BatchNorm and dropout."""
    run = tmp_path_factory.mktemp("ckpt")
    fit(Task(), Pairs(), run, **FIT)
    return list_checkpoints(run / "checkpoints")[-1][1]


def copy_run(checkpoint: Path, tmp_path_factory) -> tuple[Path, Path]:
    run = tmp_path_factory.mktemp("fuzz")
    target = run / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, target)
    return run, target


def resume(run: Path) -> None:
    """A resuming ``fit`` at the checkpoint's step: it restores everything and trains nothing."""
    fit(Task(), Pairs(), run, **FIT)


def assert_names(exc: GanCompressError, path: Path) -> None:
    assert str(path) in str(exc) or str(path.parent) in str(exc), str(exc)


@FUZZ
@given(
    name=st.sampled_from(["model.safetensors", "state.safetensors", "state.json"]),
    cut=st.integers(0, 3000),
    noise=st.binary(max_size=48),
)
def test_truncated_or_garbled_checkpoint_files(tmp_path_factory, checkpoint, name, cut, noise):
    run, target = copy_run(checkpoint, tmp_path_factory)
    data = (target / name).read_bytes()
    (target / name).write_bytes(data[:cut] + noise)
    for load in (lambda: load_checkpoint(target), lambda: resume(run)):
        try:
            load()
        except GanCompressError as exc:
            assert_names(exc, target / name)


def _paths(obj, prefix=()):
    """Every position in a JSON tree, as a tuple of keys / indices."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@FUZZ
@given(where=st.integers(0, 10**6), value=json_values)
def test_rewritten_checkpoint_state_json(tmp_path_factory, checkpoint, where, value):
    """One subtree of ``state.json`` (the step, an optimizer's state, the RNG, ...) replaced by any JSON."""
    run, target = copy_run(checkpoint, tmp_path_factory)
    meta = json.loads((target / "state.json").read_text())
    paths = list(_paths(meta))
    path = paths[where % len(paths)]
    if not path:
        meta = value
    else:
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    (target / "state.json").write_text(json.dumps(meta))
    for load in (lambda: load_checkpoint(target), lambda: resume(run)):
        try:
            load()
        except GanCompressError as exc:
            assert_names(exc, target / "state.json")


# -- the compression methods' state files ---------------------------------------------------------
@pytest.fixture(scope="module")
def supernet():
    from gancompress.models import create_generator

    torch.manual_seed(0)
    return create_generator("resnet", base_width=4, num_blocks=3)


@FUZZ
@given(
    text=GARBAGE,
    entry=json_values,
)
def test_search_and_cost_caches(tmp_path_factory, supernet, text, entry):
    """The search cache and the MACs / latency tables: any file, or an entry of any value for the key asked."""
    from gancompress.methods.gan_compression.search import HeldOut, LatencyTable, MacsTable, SubnetEvaluator

    arch = ArchSpec.parse("resnet", str(supernet.arch))
    held = HeldOut(
        inputs=[torch.zeros(1, 3, 16, 16)], reals=[torch.zeros(1, 3, 16, 16)], extras=[{}], slice_id="s"
    )
    root = tmp_path_factory.mktemp("cache")
    makers = {
        "macs_cache.json": lambda p: MacsTable(supernet, (16, 16), p),
        "latency_cache.json": lambda p: LatencyTable(supernet, (16, 16), p, repeats=1, warmup=0),
        "search_cache.json": lambda p: SubnetEvaluator(supernet, held, "psnr", cache_path=p),
    }
    for name, make in makers.items():
        path = root / name
        # the whole file garbled
        path.write_bytes(text)
        try:
            make(path)(arch)
        except GanCompressError as exc:
            assert_names(exc, path)
        # a well-formed file whose entry for this very architecture holds any value
        path.unlink(missing_ok=True)
        key = make(None).key(arch)
        path.write_text(json.dumps({"version": 1, "entries": {key: entry}}))
        try:
            value = make(path)(arch)
        except GanCompressError as exc:
            assert_names(exc, path)
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool)


@FUZZ
@given(text=GARBAGE)
def test_coronet_target_record(tmp_path_factory, text):
    from gancompress.methods.coronet.pipeline import _check_same_target

    run = tmp_path_factory.mktemp("coronet")
    (run / "target.json").write_bytes(text)
    try:
        _check_same_target(run, 1000.0, resume=True)
    except GanCompressError as exc:
        assert_names(exc, run / "target.json")
    else:
        assert json.loads((run / "target.json").read_text()) == {"target_macs": 1000.0}


@FUZZ
@given(text=GARBAGE)
def test_demo_stage_record(tmp_path_factory, text):
    from gancompress.bench.demo import load_demo_recipe, stage_dir

    run = tmp_path_factory.mktemp("demo")
    (run / "recipe.json").write_bytes(text)
    try:
        stage_dir(run, load_demo_recipe(quick=True), run)
    except GanCompressError as exc:
        assert_names(exc, run / "recipe.json")


@FUZZ
@given(config=json_values)
def test_teacher_discriminator_config(tmp_path_factory, config):
    """``discriminator.json`` beside a teacher (read by ``compress`` to start the student's D from it)."""
    from safetensors.torch import save_file

    from gancompress.methods.gan_compression.distill import build_discriminator
    from gancompress.methods.gan_compression.recipe import DiscriminatorConfig
    from gancompress.models import create_discriminator

    teacher = tmp_path_factory.mktemp("teacher")
    d = create_discriminator("patchgan", in_channels=6, base_width=4, num_layers=2, norm="instance")
    save_file(d.state_dict(), str(teacher / "discriminator.safetensors"))
    if isinstance(config, dict) and len(config) < 2:
        config = {"name": "patchgan", "in_channels": 6, "base_width": 4, "num_layers": 2, **config}
    (teacher / "discriminator.json").write_text(json.dumps(config))
    try:
        build_discriminator(DiscriminatorConfig(init_from=str(teacher)), 3, 3)
    except GanCompressError as exc:
        assert_names(exc, teacher / "discriminator.json")


# -- crafted pickles where a .pth is accepted ------------------------------------------------------
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _loaders():
    from gancompress.export.official import import_official_generator
    from gancompress.metrics.inception import load_fid_inception
    from gancompress.metrics.vgg import load_vgg16_features

    return {
        "official generator": import_official_generator,
        "FID Inception weights": load_fid_inception,
        "VGG16 weights": load_vgg16_features,
    }


@pytest.mark.parametrize("loader", ["official generator", "FID Inception weights", "VGG16 weights"])
def test_crafted_pickle_is_refused_without_running_it(tmp_path, loader):
    marker = tmp_path / "code-ran"
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        _loaders()[loader](path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@FUZZ
@given(cut=st.integers(0, 2000), noise=st.binary(max_size=32), count=json_values)
def test_feature_statistics_cache(tmp_path_factory, cut, noise, count):
    """A damaged cached ``.npz`` of real-image statistics is recomputed (None), never trusted or fatal."""
    import io

    import numpy as np

    from gancompress.metrics.stats import load_stats

    path = tmp_path_factory.mktemp("stats") / "k.npz"
    buf = io.BytesIO()
    count = np.asarray(count, dtype=object) if not isinstance(count, int | float) else count
    arrays = {"mu": np.zeros(4), "sigma": np.eye(4), "sample": np.zeros((2, 4))}
    try:
        np.savez(buf, count=count, **arrays)
    except (ValueError, TypeError):
        np.savez(buf, count=3, **arrays)
    path.write_bytes(buf.getvalue()[:cut] + noise if cut < len(buf.getvalue()) else buf.getvalue())
    stats = load_stats(path)
    assert stats is None or stats.mu.shape == (4,)


SMALL_VALUES = st.sampled_from([None, True, -1, 0, 1.5, "x", [], {}, [1, "a"], {"name": None}])


@FUZZ
@given(
    kind=st.sampled_from(["extractor", "segmenter"]),
    target=st.sampled_from(["json-bytes", "json-tree", "weights"]),
    where=st.integers(0, 10**6),
    cut=st.integers(0, 3000),
    noise=st.binary(max_size=32),
    value=SMALL_VALUES,
)
def test_extractor_and_segmenter_files(tmp_path_factory, kind, target, where, cut, noise, value):
    """A user's extractor / segmenter (``.json`` beside ``.safetensors``): damaged files are project errors."""
    from gancompress.metrics.domain import assets_dir, load_domain_extractor
    from gancompress.metrics.segmentation import load_segmenter, segmenters_dir

    source = assets_dir() / "fonts.json" if kind == "extractor" else segmenters_dir() / "labels2sat.json"
    folder = tmp_path_factory.mktemp(kind)
    meta, weights = folder / "m.json", folder / "m.safetensors"
    shutil.copy(source, meta)
    shutil.copy(source.with_suffix(".safetensors"), weights)
    if target == "json-bytes":
        meta.write_bytes(meta.read_bytes()[:cut] + noise)
    elif target == "weights":
        weights.write_bytes(weights.read_bytes()[:cut] + noise)
    else:  # one subtree replaced by a small value (never a huge width: that would only exhaust memory)
        info = json.loads(meta.read_text())
        paths = list(_paths(info))
        path = paths[where % len(paths)]
        if not path:
            info = value
        else:
            node = info
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        meta.write_text(json.dumps(info))
    try:
        (load_domain_extractor if kind == "extractor" else load_segmenter)(meta)
    except GanCompressError as exc:
        assert str(meta) in str(exc)


@FUZZ
@given(text=GARBAGE)
def test_dataset_metadata(tmp_path_factory, text):
    from gancompress.data.metadata import METADATA_NAME, read_metadata

    root = tmp_path_factory.mktemp("meta")
    (root / METADATA_NAME).write_bytes(text)
    try:
        info = read_metadata(root)
    except GanCompressError as exc:
        assert str(root / METADATA_NAME) in str(exc)
    else:
        assert isinstance(info, dict) and "kind" in info
