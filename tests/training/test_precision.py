"""Mixed precision, channels-last, compile and devices in fit(): bf16 on CPU (and CUDA when present), fp16 on CUDA."""

from __future__ import annotations

import json

import pytest
import torch
from fit_tasks import FIT_KW, NoisyPairs, make_task
from safetensors.torch import load_file
from test_tasks import TINY, _data, recipe

from gancompress.errors import ConfigError
from gancompress.training import Callback, fit, list_checkpoints, load_checkpoint
from gancompress.training.tasks import build_task

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, state, logs):
        if state.step == self.at:
            raise KeyboardInterrupt


def _weights(run_dir):
    return load_file(str(list_checkpoints(run_dir / "checkpoints")[-1][1] / "model.safetensors"))


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _teacher(task: str):
    torch.manual_seed(0)
    return build_task(recipe(task), in_channels=5 if task == "gaugan" else 3, out_channels=3)


TASK_KW = dict(batch_size=2, max_steps=4, checkpoint_every=2, log_every=1, progress=False, tensorboard=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("task", list(TINY))
def test_each_teacher_task_trains_in_bf16_and_resumes_exactly(task, device, tmp_path):
    kw = dict(TASK_KW, device=device, precision="bf16", num_samples=2)
    straight = fit(_teacher(task), _data(task), tmp_path / "straight", **kw)
    assert all(torch.isfinite(torch.tensor(v)) for v in straight["logs"].values())
    assert (tmp_path / "straight" / "samples" / "step_0000004.png").is_file()
    with pytest.raises(KeyboardInterrupt):
        fit(_teacher(task), _data(task), tmp_path / "resumed", callbacks=[StopAt(3)], **kw)
    resumed = fit(_teacher(task), _data(task), tmp_path / "resumed", **kw)
    assert resumed["start_step"] == 2 and resumed["step"] == 4
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    # weights and checkpoints stay fp32 whatever the compute precision
    assert all(
        v.dtype == torch.float32 for v in _weights(tmp_path / "resumed").values() if v.is_floating_point()
    )


def test_bf16_really_computes_in_bf16(tmp_path):
    # The same run in fp32 and bf16 ends with different weights: autocast is applied, not ignored.
    fp32 = fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "fp32", **dict(TASK_KW, max_steps=2))
    bf16 = fit(
        _teacher("pix2pix"),
        _data("pix2pix"),
        tmp_path / "bf16",
        precision="bf16",
        **dict(TASK_KW, max_steps=2),
    )
    assert fp32["logs"] != bf16["logs"]
    assert not _same(_weights(tmp_path / "fp32"), _weights(tmp_path / "bf16"))


def test_fp16_on_cpu_and_unknown_precisions_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"precision fp16 needs a CUDA device.*bf16"):
        fit(make_task(), NoisyPairs(), tmp_path, precision="fp16", **FIT_KW)
    with pytest.raises(ConfigError, match=r"precision must be one of fp32, bf16, fp16, got 'fp8'"):
        fit(make_task(), NoisyPairs(), tmp_path, precision="fp8", **FIT_KW)
    assert not list_checkpoints(tmp_path / "checkpoints")  # refused before anything is written


def test_compile_is_off_by_default_and_compiles_g_and_d_in_place_when_asked(tmp_path):
    t = _teacher("pix2pix")
    fit(t, _data("pix2pix"), tmp_path / "default", **dict(TASK_KW, max_steps=1))
    assert t.generator()._compiled_call_impl is None and t.discriminator()._compiled_call_impl is None
    c = _teacher("pix2pix")
    keys = list(c.state_dict())
    fit(c, _data("pix2pix"), tmp_path / "compiled", compile=True, **dict(TASK_KW, max_steps=0))
    assert c.generator()._compiled_call_impl is not None and c.discriminator()._compiled_call_impl is not None
    assert list(c.state_dict()) == keys  # in place: checkpoints keep their keys


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_trains_and_checkpoints_resume(device, tmp_path):
    kw = dict(TASK_KW, device=device, channels_last=True)
    t = _teacher("pix2pix")
    fit(t, _data("pix2pix"), tmp_path, **kw)
    conv = next(p for p in t.generator().parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    again = _teacher("pix2pix")
    result = fit(again, _data("pix2pix"), tmp_path, **dict(kw, channels_last=False))
    assert result["start_step"] == 4
    assert _same(
        {k: v.cpu() for k, v in again.state_dict().items()}, {k: v.cpu() for k, v in t.state_dict().items()}
    )


def test_checkpoint_resumes_when_the_device_is_given_differently(tmp_path):
    fit(make_task(), NoisyPairs(), tmp_path / "straight", **FIT_KW)
    with pytest.raises(KeyboardInterrupt):
        fit(make_task(), NoisyPairs(), tmp_path / "moved", device="cpu", callbacks=[StopAt(8)], **FIT_KW)
    result = fit(make_task(), NoisyPairs(), tmp_path / "moved", device=torch.device("cpu"), **FIT_KW)
    assert result["start_step"] == 6
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "moved"))


def test_resumed_run_says_from_which_step(tmp_path, capsys):
    fit(make_task(), NoisyPairs(), tmp_path, **dict(FIT_KW, max_steps=6))
    capsys.readouterr()
    fit(make_task(), NoisyPairs(), tmp_path, **FIT_KW)
    captured = capsys.readouterr()
    assert "resuming from step 6" in captured.err and "resuming" not in captured.out


@CUDA
def test_a_cuda_checkpoint_resumes_on_cpu_and_back(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fit(make_task(), NoisyPairs(), tmp_path, device="cuda", callbacks=[StopAt(4)], **FIT_KW)
    on_cpu = fit(make_task(), NoisyPairs(), tmp_path, device="cpu", **dict(FIT_KW, max_steps=9))
    assert on_cpu["start_step"] == 3
    back = fit(make_task(), NoisyPairs(), tmp_path, device="cuda", **FIT_KW)
    assert back["start_step"] == 9 and back["step"] == 14


@CUDA
def test_fp16_on_cuda_scales_the_loss_and_resumes_exactly(tmp_path):
    kw = dict(TASK_KW, device="cuda", precision="fp16")
    fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "straight", **kw)
    with pytest.raises(KeyboardInterrupt):
        fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "resumed", callbacks=[StopAt(3)], **kw)
    fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "resumed", **kw)
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    meta = json.loads(
        (list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1] / "state.json").read_text()
    )
    assert "grad_scaler" in meta["state"]


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """The fp16 machinery (autocast to float16, GradScaler) on the CPU, which fit() refuses to users:
    it lets the suite test loss scaling and its checkpoints without a GPU."""
    from gancompress.training import loop
    from gancompress.training.precision import Precision

    monkeypatch.setattr(loop, "resolve_precision", lambda name, device: Precision(name, torch.device(device)))


def test_fp16_loss_scaling_adapts_and_its_state_resumes_exactly(fp16_on_cpu, tmp_path):
    kw = dict(TASK_KW, precision="fp16", max_steps=6)
    straight = fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "straight", **kw)
    assert all(torch.isfinite(torch.tensor(v)) for v in straight["logs"].values())
    state = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step_0000006").state
    assert 0 < state["grad_scaler"]["scale"] < 65536.0  # it started at 2**16, came down on overflowing steps
    with pytest.raises(KeyboardInterrupt):
        fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "resumed", callbacks=[StopAt(3)], **kw)
    fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "resumed", **kw)
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step_0000006").state
    assert resumed["grad_scaler"] == state["grad_scaler"]
    # fp32 checkpoints keep their layout: no grad_scaler entry
    fit(_teacher("pix2pix"), _data("pix2pix"), tmp_path / "fp32", **dict(TASK_KW, max_steps=1))
    assert "grad_scaler" not in load_checkpoint(tmp_path / "fp32" / "checkpoints" / "step_0000001").state


def test_fp16_refuses_a_task_that_calls_backward_itself(fp16_on_cpu, tmp_path):
    # TinyTask calls loss.backward() itself: its unscaled gradients must not be silently unscaled again.
    with pytest.raises(ConfigError, match=r"precision fp16: this Task calls loss.backward\(\) itself"):
        fit(make_task(), NoisyPairs(), tmp_path, precision="fp16", **FIT_KW)
