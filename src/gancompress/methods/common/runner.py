"""The one runner every method goes through: what every method needs, around the method's stages.

``run_method(cls, teacher, data, out_dir, options)`` resolves and saves the recipe, seeds, builds
the data and the hold-out split, checks the teacher against the data, resolves the target, calls
the method's stages (prepare → plan → train → extract → finetune), profiles the student, scores it
with the quality gate, saves it (``student/``, or ``student.failed/`` when the gate fails), exports
the method's extra files, and writes one summary (``method_summary.json``, the schema in
docs/methods.md). A failed gate raises :class:`~gancompress.errors.QualityGateError` after the
summary is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ...config import recipes_dir, save_yaml
from ...errors import ConfigError, QualityGateError
from ...models import Generator
from ...training import distributed as D
from ...training.callbacks import Callback
from ...utils.files import atomic_write_json
from ..base import CompressionResult, MethodOptions
from .data import build_datasets, split_holdout, stack_batches
from .discriminator import build_discriminator
from .macs import MacsTable, profile_arch, profile_dict
from .method import Method
from .plan import Plan, make_plan, time_steps
from .recipe import DiscriminatorConfig, StageConfig, load_method_recipe
from .resume import check_inputs, weights_digest
from .stage import run_stage, stage_steps
from .target import Target, resolve_target
from .teacher import check_teacher_fits_data, in_channels, out_channels, plain_teacher

SUMMARY_FILE = "method_summary.json"
SUMMARY_KEYS = (
    "schema", "method", "task", "data_kind", "image_size", "teacher", "student", "macs_ratio", "target",
    "plan", "stages", "gate", "wall_time_s", "notes", "details", "artifacts", "device", "precision",
    "torch", "threads",
)  # fmt: skip


def builtin_recipe(folder: str, quick: bool, scratch: bool = False) -> Path:
    """``configs/methods/<folder>/fonts.yaml`` (or ``fonts_quick.yaml``): a method's built-in recipe.

    ``scratch`` (no teacher): ``fonts_scratch[_quick].yaml``, where the method ships one.
    """
    base = recipes_dir() / "methods" / folder
    name = "fonts_quick.yaml" if quick else "fonts.yaml"
    if scratch and (base / name.replace("fonts", "fonts_scratch")).is_file():
        name = name.replace("fonts", "fonts_scratch")
    path = base / name
    if not path.is_file():
        raise ConfigError(f"built-in recipe {path} not found; pass --recipe (or set GANCOMPRESS_CONFIGS)")
    return path


class Run:
    """One compress run's shared state: what the runner resolved, and what the stages report."""

    def __init__(
        self, cls: type[Method], teacher: Generator | None, data: Path, out_dir: Path, options: MethodOptions
    ) -> None:
        self.t0 = time.perf_counter()
        self.cls, self.method = cls, cls.name
        # No teacher (a method that trains from scratch): ``teacher`` becomes the method's full-width
        # starting generator (fresh weights) in resolve_start; it gives the family, widths and MACs only.
        self.has_teacher = teacher is not None
        self.teacher, self.data, self.out_dir = teacher, Path(data), Path(out_dir)
        self.kind: str | None = None
        self.recipe_path = (
            Path(options.recipe)
            if options.recipe
            else builtin_recipe(cls.recipe_folder, options.quick, scratch=teacher is None)
        )
        self.notes: dict[str, str] = {}
        self.stages: dict[str, dict[str, Any]] = {}
        self.wall: dict[str, float] = {}
        self.plan: Plan | None = None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.set_recipe(load_method_recipe(cls.recipe_class, self.recipe_path, options.overrides))
        # The recipe's seed offsets --seed; every stage (weights, sampling, data order) draws from the sum.
        self.options = dataclasses.replace(options, seed=options.seed + self.recipe.seed)
        torch.manual_seed(self.options.seed)

    # -- what the runner resolves ---------------------------------------------------------------
    def set_recipe(self, recipe: Any, note_key: str | None = None, note: str | None = None) -> None:
        """Use ``recipe`` from now on (a method may adapt it to the data) and save it as run."""
        self.recipe = recipe
        save_yaml(recipe, self.out_dir / "recipe.yaml")
        if note_key is not None and note is not None:
            self.notes[note_key] = note

    def resolve_start(self) -> None:
        """No teacher: the data first, then the method's starting generator (channels from the data)."""
        from ...training.state import preserved_rng
        from .data import split_batch

        self.resolve_data()
        with preserved_rng(seed=0):  # the same fresh weights every time: a stable fingerprint for resume
            x, y = split_batch(self.evaluation[0])
            self.teacher = self.cls.start_generator(self.recipe, int(x.shape[0]), int(y.shape[0]))
        self.notes["start"] = (
            f"no teacher: trained from scratch, starting from {self.teacher.family} {self.teacher.arch} "
            "(fresh weights); the MACs target, --ratio and macs_ratio are relative to this full-width generator"
        )

    def resolve_teacher(self) -> None:
        """The teacher (checked by the method), its profile, and the target: what needs no data."""
        cls, recipe = self.cls, self.recipe
        cls.check_teacher(self.teacher)
        self.frozen = plain_teacher(self.teacher) if self.has_teacher else None
        self.teacher_digest = weights_digest(self.teacher)
        self.size = tuple(recipe.image_size)
        self.teacher_prof = profile_arch(
            type(self.teacher), self.teacher.options, self.teacher.arch, self.size
        )
        if recipe.data.unlabelled is not None and not cls.takes_unlabelled:
            raise ConfigError(f"data.unlabelled: {cls.name} does not train on unlabelled inputs")
        self.target: Target = resolve_target(
            cls.name, cls.target_kinds, self.options, cls.recipe_targets(recipe), self.teacher_prof.macs_paper,
            cls.target_required,
        )  # fmt: skip

    def resolve_data(self) -> None:
        """The datasets (checked against the teacher) and the hold-out split (once)."""
        cls, recipe = self.cls, self.recipe
        if self.kind is not None:  # read already: a run without a teacher reads the data first
            return
        train_full, self.evaluation, self.kind = build_datasets(
            self.data, recipe.data, cls.refused_kinds, cls.name
        )
        if self.teacher is not None:
            check_teacher_fits_data(self.teacher, self.evaluation, self.data)
        self.train_idx, self.held_idx = split_holdout(len(train_full), recipe.data.holdout)
        self.train: Dataset = Subset(train_full, self.train_idx)

    @property
    def batch_size(self) -> int:
        """Images per step and process (the recipe's ``data.batch_size``)."""
        return self.recipe.data.batch_size

    @property
    def global_batch(self) -> int:
        """Images per step over all processes: under torchrun an epoch takes ``WORLD_SIZE`` times fewer steps."""
        return self.batch_size * D.world_size()

    # -- what the stages use --------------------------------------------------------------------
    def fit(
        self,
        name: str,
        task: nn.Module,
        stage: StageConfig,
        *,
        run_dir: Path | None = None,
        inputs: dict[str, Any] | None = None,
        what: str = "trained with",
        derived: tuple[str, ...] = (),
        callbacks: Sequence[Callback] = (),
    ) -> dict[str, Any]:
        """Train stage ``name`` (planned length, resumable, refusing other inputs); returns its report.

        ``derived``: the ``inputs`` an earlier stage produced; when they change the stage starts over.
        ``callbacks``: passed to the training loop (e.g. GAN Slimming's cosine learning rate).
        """
        planned = self.plan.steps(name) if self.plan is not None else None
        if planned is not None and planned < stage_steps(stage, len(self.train), self.global_batch)[0]:
            stage = dataclasses.replace(stage, max_steps=planned)
        run_dir = run_dir or self.out_dir / name
        record = {"seed": self.options.seed, "teacher": self.teacher_digest, **(inputs or {})}
        # Under torchrun rank 0 decides (and records the inputs) for every rank.
        resume = D.on_main(
            lambda: check_inputs(run_dir / "inputs.json", record, self.options.resume, what, derived)
        )
        if not resume and self.options.resume:
            self.notes[f"{name}_restarted"] = f"{name} started over: {', '.join(derived)} changed"
        options = dataclasses.replace(self.options, resume=resume)
        result = run_stage(
            task,
            self.train,
            stage,
            run_dir,
            options,
            self.batch_size,
            self.recipe.data.num_workers,
            callbacks=callbacks,
        )
        self.stages[name] = result
        return result

    def discriminator(
        self, cfg: DiscriminatorConfig | None = None, swap: bool = False
    ) -> tuple[nn.Module, str]:
        """The student's discriminator from ``cfg`` (default: the recipe's); ``swap``: for the B→A side."""
        cfg = cfg or self.recipe.discriminator
        i, o = in_channels(self.teacher), out_channels(self.teacher)
        return build_discriminator(cfg, o, i) if swap else build_discriminator(cfg, i, o)

    def held_out(self, batch_size: int = 8, indices: list[int] | None = None):
        """(inputs, real outputs, extra forward arguments) batches of the held-out slice, on the device."""
        indices = self.held_idx if indices is None else indices
        return stack_batches(self.evaluation, indices, batch_size, self.teacher.family, self.options.device)

    def macs_table(self, generator: Generator, name: str = "macs_cache.json") -> MacsTable:
        return MacsTable(generator, self.size, self.out_dir / name)

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        yield
        self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - start


def _plan(run: Run, method: Method) -> None:
    """Time every training stage on this machine, print the plan, and fit it to ``--time-budget``."""
    from ...training.state import preserved_rng

    cfg, options = run.recipe.planner, run.options
    if not cfg.enabled:
        if options.time_budget_s is not None:
            raise ConfigError("--time-budget needs the time planner; planner.enabled is false")
        return
    if options.time_budget_s is not None and options.time_budget_s <= 0:
        raise ConfigError(f"--time-budget must be positive, got {options.time_budget_s}")
    measured = []
    for name, (stage, factory) in method.probes().items():
        steps = stage_steps(stage, len(run.train), run.global_batch)[0] if stage.enabled else 0
        if steps == 0:
            continue
        with preserved_rng():  # the probe's fresh networks must not shift the run's random stream
            task = factory()
        step_s = time_steps(task, run.train, run.batch_size, options, cfg.probe_steps, run.out_dir)
        measured.append((name, steps, step_s))
    plan = make_plan(measured, options.time_budget_s, time.perf_counter() - run.t0, cfg)
    run.plan = D.broadcast_object(plan)  # rank 0's plan: every rank trains the same number of steps
    print(f"{run.method}: {run.plan.text()}", flush=True)


def run_method(
    cls: type[Method], teacher: Generator | None, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    """Run method ``cls`` through every stage; the student, its summary and artifacts.

    ``teacher`` None: a method with ``teacher_free`` trains from scratch from its starting generator.
    """
    from ...training.precision import resolve_precision

    if teacher is None and not cls.teacher_free:
        raise ConfigError(f"{cls.name} compresses a trained teacher: pass one (--teacher DIR)")
    _, device = D.setup(options.device)  # under torchrun: join the process group before anything is decided
    resolve_precision(options.precision, device)  # fp16 on a CPU is refused before any work, naming bf16
    if D.is_main():
        return _run_method(cls, teacher, data, out_dir, options)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # rank 0 alone reports
        return _run_method(cls, teacher, data, out_dir, options)


def _run_method(
    cls: type[Method], teacher: Generator | None, data: Path, out_dir: Path, options: MethodOptions
) -> CompressionResult:
    run = Run(cls, teacher, data, out_dir, options)
    with run.timed("prepare"):
        if teacher is None:
            run.resolve_start()
        run.resolve_teacher()
        method = cls(run)
        method.check()
        run.resolve_data()
        method.prepare()
    with run.timed("plan"):
        _plan(run, method)
    with run.timed("train"):
        method.train()
    with run.timed("extract"):
        student = method.extract()
    with run.timed("finetune"):
        student = method.finetune(student).eval()
    return _finish(run, method, student)


def gate_inputs(run: Run) -> tuple[list, list | None, list, str | None]:
    """(inputs, ground truth or None, extra arguments, a note) of the quality gate: the held-out slice."""
    indices, note = run.held_idx, None
    if not indices:  # data.holdout 0: the gate still runs, on training images (and says so)
        indices, note = run.train_idx, "no held-out images (data.holdout is 0): scored on training images"
    batches = run.held_out(8, indices[: run.recipe.gate.max_images])
    targets = [y for _, y, _ in batches] if run.kind != "unpaired" else None
    return [x for x, _, _ in batches], targets, [kw for _, _, kw in batches], note


def run_gate(run: Run, student: Generator) -> dict[str, Any]:
    """The quality gate of ``student`` against the run's teacher (if any) on the held-out inputs (printed)."""
    from ...metrics.gate import quality_gate

    cfg = run.recipe.gate
    if not cfg.enabled:
        return {"passed": None, "reason": "gate.enabled is false: not checked"}
    inputs, targets, extras, note = gate_inputs(run)
    result = quality_gate(
        student, run.frozen, inputs, targets, extras=extras,
        copy_input=None if run.kind != "semantic" else False,
        min_std=cfg.min_std, min_spread=cfg.min_spread, copy_margin_db=cfg.copy_margin_db,
    )  # fmt: skip
    print(f"{run.method}: {result.text()}", flush=True)
    return result.to_dict() | ({"note": note} if note else {})


def _save_student(run: Run, student: Generator, passed: bool) -> Path:
    """``student/`` (or ``student.failed/`` after a failed gate; the other name is removed)."""
    from ...export.saved import save_generator

    name, other = ("student", "student.failed") if passed else ("student.failed", "student")
    shutil.rmtree(run.out_dir / other, ignore_errors=True)
    key = "teacher_macs" if run.has_teacher else "start_macs"
    meta = {"method": run.method, key: run.teacher_prof.macs_paper, "arch": str(student.arch)}
    if not passed:
        meta["quality_gate"] = "failed"
    return save_generator(student, run.out_dir / name, extra=meta)


def _finish(run: Run, method: Method, student: Generator) -> CompressionResult:
    from ...metrics.profile import profile_generator

    with run.timed("gate"):
        student_prof = profile_generator(student, run.size)
        if run.target.macs is not None and student_prof.macs_paper > run.target.macs:
            raise ConfigError(
                f"{run.method}: the student costs {student_prof.macs_paper} MACs, above the target {run.target.macs:.6g}"
            )
        gate = run_gate(run, student)
    passed = gate["passed"] is not False

    def write() -> tuple[dict[str, str], dict[str, Any]]:
        # once, on rank 0 under torchrun: the student, the exports and the summary (every rank gets them)
        artifacts = {"student": str(_save_student(run, student, passed))}
        if passed:
            with run.timed("export"):
                artifacts.update(method.export(student))
        run.wall["total"] = time.perf_counter() - run.t0
        artifacts["summary"] = str(run.out_dir / SUMMARY_FILE)
        summary = build_summary(run, method, student, student_prof, gate, artifacts)
        atomic_write_json(run.out_dir / SUMMARY_FILE, summary)
        return artifacts, summary

    artifacts, summary = D.on_main(write)
    if not passed:
        raise QualityGateError(
            f"{run.method}: the student failed its quality gate: {gate['reason']}; kept as {artifacts['student']}"
        )
    return CompressionResult(method=run.method, generator=student, summary=summary, artifacts=artifacts)


def build_summary(
    run: Run, method: Method, student: Generator, student_prof: Any, gate: dict, artifacts: dict
) -> dict[str, Any]:
    """The one summary schema (keys :data:`SUMMARY_KEYS`, documented in docs/methods.md)."""
    teacher_prof = run.teacher_prof
    summary = {
        "schema": 1,
        "method": run.method,
        "task": run.recipe.task,
        "data_kind": run.kind,
        "image_size": list(run.size),
        # No teacher: null here; macs_ratio is then relative to the starting generator (notes.start).
        "teacher": {"arch": str(run.teacher.arch), **profile_dict(teacher_prof)} if run.has_teacher else None,
        "student": {"arch": str(student.arch), **profile_dict(student_prof)},
        "macs_ratio": teacher_prof.macs_paper / max(student_prof.macs_paper, 1),
        "target": run.target.to_dict(),
        "plan": run.plan.to_dict() if run.plan is not None else None,
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "fit"} for k, v in run.stages.items()},
        "gate": gate,
        "wall_time_s": run.wall,
        "notes": run.notes,
        "details": method.details(),
        "artifacts": artifacts,
        "device": str(run.options.device),
        "precision": run.options.precision,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    assert tuple(summary) == SUMMARY_KEYS
    return summary
