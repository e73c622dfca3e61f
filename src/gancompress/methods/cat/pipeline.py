"""The registered ``cat`` method (Jin et al., CVPR 2021, "Teachers Do More Than Teach").

1. **train** — the inception teacher: CAT's teacher is the inception-residual family at full width.
   Unless the given teacher already is one, it is trained here from the data with the task's
   objective (GAN + reconstruction: the ground truth on paired data, the given teacher's output on
   unpaired data) while it is distilled by kernel alignment from the given teacher's features
   (``teacher.distill``; the official code trains it from scratch with pix2pix/CycleGAN, which the
   given teacher's targets stand in for). It is saved as ``OUT/inception_teacher/``.
2. **extract** — one-step pruning: one global threshold on the norms' |γ|, found by bisection, so the
   pruned network meets the MACs target; the channels of largest |γ| are kept (``prune.py``), and the
   convolutions re-initialised as the official trainer does (``prune.init: fresh``) or kept.
3. **finetune** — the student trained with GAN + reconstruction + KA distillation from the inception
   teacher at its four feature points (no adapters), its D starting from the teacher stage's.

Recipe, data, target, resume records, plan, gate, saving and summary are the shared runner's.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from ...arch import ArchSpec
from ...errors import BudgetError, ConfigError
from ...models import Generator, create_generator
from ..common.macs import MacsTable, profile_dict
from ..common.method import Method, Probe, register
from ..common.resume import weights_digest
from ..common.teacher import in_channels, out_channels, plain_teacher
from .prune import official_init_, remove_channels, search_threshold, widths_at
from .recipe import CatRecipe
from .task import CatTask

REFUSED_FAMILIES = {
    "spade": "CAT's SPADE variant (inception_spade) is not implemented; compress GauGAN with another method",
    "munit": "MUNIT generators take a style input; CAT's inception family is image-to-image",
}


@register
class Cat(Method):
    """CAT: an inception teacher, one-step pruning of its norm scales to a MACs target, KA distillation.

    Example:
        >>> compress("cat", teacher, root, "runs/cat", MethodOptions(ratio=0.1))
    """

    name = "cat"
    student_family = "inception"
    recipe_class = CatRecipe
    recipe_folder = "cat"
    refused_kinds = ("semantic",)
    target_kinds = ("macs", "ratio")
    target_required = True

    @staticmethod
    def check_teacher(teacher: Generator) -> None:
        if teacher.family in REFUSED_FAMILIES:
            raise ConfigError(f"cat: {REFUSED_FAMILIES[teacher.family]} (teacher family {teacher.family!r})")

    @staticmethod
    def recipe_targets(recipe: CatRecipe) -> dict[str, float | None]:
        return {"macs": recipe.prune.budget_macs, "ratio": recipe.prune.ratio}

    # -- check, prepare ---------------------------------------------------------------------------
    def check(self) -> None:
        run, cfg = self.run, self.run.recipe.teacher
        given_is_inception = run.teacher.family == "inception"
        self.source = ("given" if given_is_inception else "train") if cfg.source == "auto" else cfg.source
        if self.source == "given" and not given_is_inception:
            raise ConfigError(
                f"teacher.source given: the teacher is a {run.teacher.family} generator, not an inception one; "
                "use teacher.source auto or train"
            )
        if self.source == "train" and not cfg.train.enabled:
            raise ConfigError(
                "teacher.train: training the inception teacher needs some epochs (or max_steps > 0)"
            )
        if self.source == "given" and not run.teacher.options.get("norm_affine"):
            raise ConfigError(
                "cat: the given inception teacher has no norm scales γ to prune (norm_affine false)"
            )

    def prepare(self) -> None:
        run, recipe = self.run, self.run.recipe
        self.paired = run.kind != "unpaired"
        if not self.paired and recipe.discriminator.conditional:
            disc = dataclasses.replace(recipe.discriminator, conditional=False)
            run.set_recipe(
                dataclasses.replace(recipe, discriminator=disc), "discriminator",
                "unpaired data: D sees output images only (real B against the student's), as the official",
            )  # fmt: skip
            recipe = run.recipe
        run.notes["objective"] = (
            "pix2pix: reconstruction of the ground truth" if self.paired
            else "unpaired: reconstruction of the teacher's output"
        )  # fmt: skip
        self.options = self.inception_options()
        with torch.device("meta"):
            shape = create_generator("inception", **self.options)
        self.macs = MacsTable(shape, run.size, run.out_dir / "cat_macs_cache.json")
        floor = ArchSpec(
            "inception",
            tuple(
                min(recipe.prune.min_channels, w) if g.name in ("stem", "down1", "trunk", "up1", "up2") else 1
                for g, w in zip(shape.width_groups, shape.arch.widths)
            ),
        )
        if self.macs(floor) > run.target.macs:  # an unreachable target fails now, before any training
            raise BudgetError(
                f"MACs target {run.target.macs:.4g} is below the smallest network CAT's pruning can give "
                f"({self.macs(floor):.4g} MACs: {recipe.prune.min_channels} channels per outer layer and one "
                "per branch); raise the target or lower prune.min_channels"
            )
        self.teacher_points = tuple(p for p in recipe.loss.feature_points if p in run.teacher.feature_points)

    def inception_options(self) -> dict[str, Any]:
        run, cfg = self.run, self.run.recipe.teacher
        if self.source == "given":
            return dict(run.teacher.options)
        base = cfg.base_width or int(run.teacher.options.get("base_width", 64))
        return dict(
            in_channels=in_channels(run.teacher), out_channels=out_channels(run.teacher), base_width=base,
            num_blocks=cfg.num_blocks, kernel_sizes=list(cfg.kernel_sizes), reduction=cfg.reduction,
            norm=cfg.norm, norm_affine=True,
        )  # fmt: skip

    def task(self, student: Generator, teacher: Generator, stage, disc, points, distill: float) -> CatTask:  # noqa: ANN001
        recipe = self.run.recipe
        return CatTask(
            student, teacher, disc, recipe.loss, stage, points=points, distill=distill, paired=self.paired,
            conditional=recipe.discriminator.conditional,
        )  # fmt: skip

    def new_disc(self):  # noqa: ANN201
        return self.run.discriminator()[0] if self.run.recipe.loss.gan > 0 else None

    def probes(self) -> dict[str, Probe]:
        recipe = self.run.recipe

        def teacher_stage() -> CatTask:
            fresh = create_generator("inception", **self.options)
            return self.task(fresh, self.run.frozen, recipe.teacher.train, self.new_disc(),
                             self.teacher_points, recipe.teacher.distill)  # fmt: skip

        def student_stage() -> CatTask:  # the unpruned network: an upper bound of the student's cost
            teacher = create_generator("inception", **self.options).eval()
            fresh = create_generator("inception", **self.options)
            return self.task(fresh, teacher, recipe.finetune, self.new_disc(), recipe.loss.feature_points,
                             recipe.loss.distill)  # fmt: skip

        probes: dict[str, Probe] = {"finetune": (recipe.finetune, student_stage)}
        if self.source == "train":
            probes = {"teacher": (recipe.teacher.train, teacher_stage), **probes}
        return probes

    # -- train: the inception teacher -------------------------------------------------------------
    def train(self) -> None:
        run, recipe = self.run, self.run.recipe
        self.teacher_disc = None
        self.teacher_dir = None
        if self.source == "given":
            self.cat_teacher = run.frozen
            run.notes["inception_teacher"] = "the given teacher (already of the inception family)"
            return
        teacher = create_generator("inception", **self.options)
        disc = self.new_disc()
        task = self.task(
            teacher, run.frozen, recipe.teacher.train, disc, self.teacher_points, recipe.teacher.distill
        )
        inputs = {"inception": self.options, "points": list(self.teacher_points)}
        run.fit("teacher", task, recipe.teacher.train, inputs=inputs)
        self.teacher_disc = disc
        self.cat_teacher = teacher.eval().requires_grad_(False)
        from ...export.saved import save_generator

        self.teacher_dir = save_generator(
            self.cat_teacher, run.out_dir / "inception_teacher",
            extra={"method": "cat", "role": "inception teacher", "distilled_from": str(run.teacher.arch)},
        )  # fmt: skip
        run.notes["inception_teacher"] = (
            f"trained here ({run.stages['teacher']['steps']} steps) with the task's objective and KA from the "
            f"given {run.teacher.family} teacher at {list(self.teacher_points) or 'no'} feature points"
        )

    # -- extract: one-step pruning ----------------------------------------------------------------
    def extract(self) -> Generator:
        run, cfg = self.run, self.run.recipe.prune
        teacher = plain_teacher(self.cat_teacher)
        self.pruning = search_threshold(teacher, self.macs, run.target.macs, cfg.min_channels, cfg.tolerance)
        self.pruning.update(
            target_macs=run.target.macs, min_channels=cfg.min_channels, init=cfg.init,
            teacher_arch=str(teacher.arch), teacher_macs=self.macs(teacher.arch),
        )  # fmt: skip
        arch = ArchSpec.parse("inception", self.pruning["arch"])
        student = remove_channels(teacher, arch).train().requires_grad_(True)
        if cfg.init == "fresh":
            official_init_(student, cfg.init_gain, seed=run.options.seed)
        return student

    # -- finetune: the KA-distilled student -------------------------------------------------------
    def finetune(self, student: Generator) -> Generator:
        run, recipe = self.run, self.run.recipe
        self.final = student
        if not recipe.finetune.enabled:
            run.notes["finetune"] = "finetune is off: the pruned network is the student as it is"
            return student
        if recipe.loss.gan > 0 and self.teacher_disc is not None:
            disc = copy.deepcopy(self.teacher_disc).train().requires_grad_(True)
            run.notes["discriminator"] = (
                "the student's D starts from the inception teacher's (official --restore_D_path)"
            )
        else:
            disc, note = self.run.discriminator() if recipe.loss.gan > 0 else (None, "none (loss.gan is 0)")
            run.notes["discriminator"] = note
        task = self.task(
            student, self.cat_teacher, recipe.finetune, disc, recipe.loss.feature_points, recipe.loss.distill
        )
        run.fit(
            "finetune", task, recipe.finetune,
            inputs={"arch": str(student.arch), "start": weights_digest(student), "target_macs": run.target.macs},
            derived=("arch", "start"),
        )  # fmt: skip
        return student

    def export(self, student: Generator) -> dict[str, str]:
        return {"inception_teacher": str(self.teacher_dir)} if self.teacher_dir is not None else {}

    def details(self) -> dict[str, Any]:
        from ...metrics.profile import profile_generator

        run, recipe = self.run, self.run.recipe
        t = profile_generator(self.cat_teacher, run.size)
        return {
            "inception_teacher": {"source": self.source, "arch": str(self.cat_teacher.arch), **profile_dict(t),
                                  "distilled_at": list(self.teacher_points) if self.source == "train" else []},
            "pruning": self.pruning,
            "distillation": {"kind": "kernel alignment", "points": list(recipe.loss.feature_points),
                             "weight": recipe.loss.distill},
            "reached_macs": profile_generator(self.final, run.size).macs_paper,
            "floor_arch": str(widths_at(self.cat_teacher, float("inf"), recipe.prune.min_channels)),
        }  # fmt: skip
