"""The teacher-training recipe: frozen dataclasses read from YAML (``configs/train/*.yaml``).

Every hyperparameter lives in the YAML recipes; these classes say which fields exist and check them.
``gancompress train --recipe R --set train.max_steps=100`` reads ``R``, applies the overrides and
writes the resolved recipe to the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import CONFIG_VERSION, apply_overrides, from_dict, load_yaml, recipes_dir
from ..errors import ConfigError
from ..recipe_blocks import DiscriminatorConfig, GanLossConfig, ImageDataConfig, check_version
from ..recipe_blocks import non_negative as _non_negative
from ..recipe_blocks import positive as _positive

TASKS = ("pix2pix", "cyclegan", "gaugan", "munit")
TaskName = Literal["pix2pix", "cyclegan", "gaugan", "munit"]


@dataclass(frozen=True)
class DataConfig(ImageDataConfig):
    """Where the images are and how they are read: ``root`` is a folder or ``builtin:fonts``."""

    root: str = "builtin:fonts"
    builtin_size: int = 64  # image size of a built-in dataset
    test_split: str = "test"  # scored after training (paired metrics) and the source of the sample grid

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("data.builtin_size", self.builtin_size)


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator family and its constructor options (``gancompress list`` shows the families)."""

    name: str = "resnet"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig(GanLossConfig):
    """Weights of each task's terms; a task ignores the ones it does not have."""

    l1: float = 100.0  # pix2pix
    cycle: float = 10.0  # CycleGAN (λ_A = λ_B)
    identity: float = 0.5  # CycleGAN, relative to the cycle weight, as the official code
    pool_size: int = 50  # CycleGAN's image pool
    feature_matching: float = 10.0  # GauGAN
    vgg: float = 10.0  # GauGAN; 0 switches the VGG loss off explicitly
    vgg_source: str = "auto"  # packaged VGG16 weights: hed, craft, auto, or a file path
    image_recon: float = 10.0  # MUNIT
    style_recon: float = 1.0  # MUNIT
    content_recon: float = 1.0  # MUNIT

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("l1", "cycle", "identity", "feature_matching", "vgg"):
            _non_negative(f"loss.{name}", getattr(self, name))
        for name in ("image_recon", "style_recon", "content_recon", "pool_size"):
            _non_negative(f"loss.{name}", getattr(self, name))


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D; GauGAN's TTUR is lr_g=1e-4, lr_d=4e-4, betas (0, 0.9)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        _positive("optim.lr_g", self.lr_g)
        _positive("optim.lr_d", self.lr_d)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"optim.beta1/beta2 must lie in [0, 1), got {self.beta1}, {self.beta2}")


@dataclass(frozen=True)
class TrainConfig:
    """Length (epochs at constant LR + epochs of linear decay, or steps) and the loop's options."""

    batch_size: int = 1
    num_workers: int = 0
    epochs: int = 100
    decay_epochs: int = 100
    max_steps: int | None = None  # caps the run; with epochs = decay_epochs = 0 it is the whole run
    decay_from_step: int | None = None  # with max_steps alone: where the linear decay starts
    checkpoint_every: int = 1000
    log_every: int = 50
    sample_every: int | None = None  # default: checkpoint_every
    num_samples: int = 8
    keep_last: int = 3
    on_nonfinite: Literal["stop", "rollback"] = "stop"
    seed: int = 0
    threads: int | None = None  # torch CPU threads (None: torch's default)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype (fp16: CUDA, with loss scaling)
    compile: bool = False  # torch.compile the generator and discriminator
    channels_last: bool | None = None  # channels-last memory format (None: on CUDA)

    def __post_init__(self) -> None:
        _positive("train.batch_size", self.batch_size)
        _non_negative("train.num_workers", self.num_workers)
        _non_negative("train.epochs", self.epochs)
        _non_negative("train.decay_epochs", self.decay_epochs)
        if self.max_steps is not None:
            _non_negative("train.max_steps", self.max_steps)
        if self.epochs + self.decay_epochs == 0 and self.max_steps is None:
            raise ConfigError("train: give epochs/decay_epochs or max_steps")
        _positive("train.checkpoint_every", self.checkpoint_every)
        _positive("train.log_every", self.log_every)
        _positive("train.keep_last", self.keep_last)

    def schedule(self, num_samples: int, world_size: int = 1) -> tuple[int, int | None]:
        """(max_steps, decay_from) for a dataset of ``num_samples`` and this many processes."""
        per_epoch = max(1, num_samples // (self.batch_size * world_size))
        if self.epochs + self.decay_epochs == 0:
            return int(self.max_steps or 0), self.decay_from_step
        total = (self.epochs + self.decay_epochs) * per_epoch
        decay_from = self.epochs * per_epoch if self.decay_epochs else None
        if self.max_steps is not None and self.max_steps < total:
            # A capped run keeps the paper's shape: the decay starts at the same fraction of the run.
            decay_from = None if decay_from is None else round(self.max_steps * decay_from / total)
            total = self.max_steps
        return total, decay_from


@dataclass(frozen=True)
class TrainRecipe:
    """Everything ``gancompress train`` needs besides the data folder and the output folder."""

    task: TaskName = "pix2pix"
    version: int = CONFIG_VERSION
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_version(self.version)


def configs_dir() -> Path:
    """The built-in recipes' folder (see :func:`gancompress.config.recipes_dir`)."""
    return recipes_dir()


def default_recipe_path(task: str) -> Path:
    """The built-in recipe of ``task`` on the built-in fonts dataset."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    path = configs_dir() / "train" / f"{task}_fonts.yaml"
    if not path.is_file():
        raise ConfigError(f"no built-in recipe for {task} ({path} not found); pass --recipe")
    return path


def load_train_recipe(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> TrainRecipe:
    """Read a recipe YAML (with ``a.b=v`` overrides) into a validated :class:`TrainRecipe`.

    Example:
        >>> r = load_train_recipe("configs/train/pix2pix_fonts.yaml", ["train.max_steps=100"])
    """
    data = apply_overrides(load_yaml(path), list(overrides))
    return from_dict(TrainRecipe, data, str(path))
