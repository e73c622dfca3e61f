"""The registered ``coronet`` method: prune while training, generate once, fine-tune.

1. A :class:`HyperGenerator` of the teacher's family and widths (fresh weights: the GAN objective
   needs no teacher) trains with the pix2pix or CycleGAN objective, optionally distilling from the
   teacher; after each step the latents take a proximal step and the masks follow them, until the
   MACs target is reached (then pruning stops) or the stage ends (then the weakest units go).
2. The kernels are generated once, the hypernetwork is dropped and the pruned channels are removed
   (:func:`gancompress.pruning.prune_generator`): a plain generator of the same family.
3. That generator is fine-tuned with the same objective.

Without a teacher (``compress("coronet", None, ...)``, ``gancompress compress`` without ``--teacher``)
the family, options and starting widths come from the recipe's ``generator:`` block and the run
trains from scratch; the MACs target is then relative to that full-width starting generator.

Recipe, data, target, resume records, plan, gate, saving and summary are the shared runner's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ...errors import ArchSpecError, ConfigError
from ...export.saved import load_generator
from ...models import Generator
from ..common.method import Method, Probe, register
from ..common.resume import check_inputs, weights_digest
from ..common.runner import run_method
from .control import PruneController
from .hypernet import SUPPORTED_FAMILIES, HyperGenerator
from .recipe import CoronetRecipe
from .task import CoronetTask, LatentAdapters, feature_groups


def _check_same_target(run_dir: Path, target: float, resume: bool) -> None:
    """Refuse to resume a pruning stage aimed at another target (``target.json``: the stage's record
    in the format of earlier versions; the runner's ``inputs.json`` holds the same field)."""
    check_inputs(run_dir / "target.json", {"target_macs": target}, resume, what="pruned towards")


def student_base(teacher: Generator, separable: bool | None) -> Generator:
    """A fresh network of the teacher's family and widths (separable ResNet blocks on request)."""
    options = dict(teacher.options)
    if separable is not None:
        if teacher.family != "resnet":
            raise ConfigError(f"separable: family {teacher.family!r} has no separable variant")
        options["separable"] = separable
    return type(teacher).from_options(teacher.arch, options)


def reverse_generator(teacher: Generator, recipe: CoronetRecipe) -> Generator:
    """CycleGAN's B→A generator: the teacher's family at its widths, image channels swapped."""
    if recipe.reverse_init is not None:
        reverse = load_generator(recipe.reverse_init)
        if reverse.options.get("in_channels") != teacher.options.get("out_channels"):
            raise ConfigError(
                f"reverse_init: {recipe.reverse_init} does not map the teacher's output domain back"
            )
        return reverse.train()
    options = dict(teacher.options)
    options["in_channels"], options["out_channels"] = options["out_channels"], options["in_channels"]
    return type(teacher).from_options(teacher.arch, options)


@torch.no_grad()
def held_out_quality(generator: Generator, batches: list) -> dict[str, float]:
    """Mean PSNR (dB) and L1 against the ground truth on held-out ``(x, y, kw)`` batches (paired data)."""
    from ...metrics.paired import l1, psnr

    if not batches:
        return {}
    generator.eval()
    fakes = [(generator(x, **kw), y) for x, y, kw in batches]
    return {
        "psnr": float(torch.cat([psnr(f, y) for f, y in fakes]).mean()),
        "l1": float(torch.cat([l1(f, y) for f, y in fakes]).mean()),
        "images": sum(x.shape[0] for x, _, _ in batches),
    }


@register
class Coronet(Method):
    """CoroNetGAN: hypernetwork pruning while the GAN trains, to a MACs target; fine-tune; export.

    Example:
        >>> compress("coronet", teacher, root, "runs/coronet", MethodOptions(ratio=0.1))
    """

    name = "coronet"
    recipe_class = CoronetRecipe
    recipe_folder = "coronet"
    target_required = True
    teacher_free = True

    @staticmethod
    def start_generator(recipe: CoronetRecipe, in_channels: int, out_channels: int) -> Generator:
        """No teacher: the recipe's ``generator:`` block at full width (image channels from the data)."""
        from ...models import create_generator

        start = recipe.generator
        if start is None or start.name is None:
            raise ConfigError(
                "coronet without --teacher trains from scratch and needs the generator to start from: pass "
                "--family resnet|unet (with --set generator.options.base_width=64 and the like), or a recipe "
                "with a generator: block (configs/methods/coronet/fonts_scratch.yaml)"
            )
        if start.name not in SUPPORTED_FAMILIES:
            raise ConfigError(
                f"generator.name: coronet supports the families {list(SUPPORTED_FAMILIES)}, not {start.name!r}"
            )
        options = dict(start.options)
        for key, want in (("in_channels", in_channels), ("out_channels", out_channels)):
            options.setdefault(key, want)
            if options[key] != want:
                raise ConfigError(
                    f"generator.options.{key} is {options[key]!r}, but the dataset's images have {want} channels"
                )
        try:
            return create_generator(start.name, arch=start.arch, **options)
        except ArchSpecError as exc:
            raise ConfigError(f"generator.arch: {exc}") from None

    @staticmethod
    def check_teacher(teacher: Generator) -> None:
        if teacher.family not in SUPPORTED_FAMILIES:
            raise ConfigError(
                f"coronet supports the families {list(SUPPORTED_FAMILIES)}, not {teacher.family!r}"
            )

    @staticmethod
    def recipe_targets(recipe: CoronetRecipe) -> dict[str, float | None]:
        return {"macs": recipe.prune.budget_macs, "ratio": recipe.prune.ratio}

    def check(self) -> None:
        run, recipe = self.run, self.run.recipe
        loss = recipe.loss
        if not run.has_teacher and (loss.distill_output > 0 or loss.distill_features > 0):
            raise ConfigError(
                "loss.distill_output / loss.distill_features distil from a teacher: pass --teacher, or set "
                "them to 0 to train from scratch"
            )
        if run.has_teacher and recipe.generator is not None:
            raise ConfigError(
                "generator: with a teacher the starting generator is the teacher's family and widths; drop "
                "the recipe's generator block (or --family), or leave out --teacher to train from scratch"
            )

    def prepare(self) -> None:
        run, recipe = self.run, self.run.recipe
        objective = recipe.loss.objective
        self.objective = (
            objective if objective != "auto" else "cyclegan" if run.kind == "unpaired" else "pix2pix"
        )
        if self.objective == "pix2pix" and run.kind == "unpaired":
            raise ConfigError(
                "loss.objective pix2pix needs paired data; this dataset is unpaired (use cyclegan)"
            )
        d = recipe.discriminator
        self.d_cfg = dataclasses.replace(d, conditional=d.conditional and self.objective == "pix2pix")
        self.disc, run.notes["discriminator"] = (
            run.discriminator(self.d_cfg) if recipe.loss.gan > 0 else (None, "none")
        )
        self.reverse = self.disc_a = None
        if self.objective == "cyclegan":
            self.reverse = reverse_generator(run.teacher, recipe)
            if recipe.loss.gan > 0:
                self.disc_a = run.discriminator(dataclasses.replace(self.d_cfg, init_from=None), swap=True)[0]
            run.notes["cyclegan"] = (
                "the A→B generator is pruned; a B→A generator of the teacher's widths trains alongside for the "
                "cycle and identity losses and is not exported"
            )

    def hyper(self) -> tuple[HyperGenerator, PruneController, LatentAdapters | None]:
        """A fresh hypernetwork of the teacher's family, its pruning controller, its feature adapters."""
        run, recipe = self.run, self.run.recipe
        base = student_base(run.teacher, recipe.separable)
        hyper = HyperGenerator(base, recipe.hypernet.embedding_dim, recipe.hypernet.latent_std)
        controller = PruneController(
            hyper, run.macs_table(base), run.target.macs, threshold=recipe.prune.threshold,
            regularization=recipe.prune.regularization, min_widths=recipe.min_widths(hyper.groups),
            groups=recipe.prune.groups,
        )  # fmt: skip
        adapters = None
        loss = recipe.loss
        if loss.distill_features > 0:
            points = tuple(loss.points) if loss.points is not None else tuple(base.feature_points)
            s_ch, t_ch = base.feature_channels(), run.frozen.feature_channels()
            adapters = LatentAdapters(
                {p: s_ch[p] for p in points}, {p: t_ch[p] for p in points}, feature_groups(base)
            )
        return hyper, controller, adapters

    def task(self, generator, stage, controller=None, adapters=None) -> CoronetTask:  # noqa: ANN001
        run, loss = self.run, self.run.recipe.loss
        distils = loss.distill_output > 0 or loss.distill_features > 0
        return CoronetTask(
            generator, self.disc, loss, stage, objective=self.objective, teacher=run.frozen if distils else None,
            controller=controller, lr_latent=run.recipe.prune.lr_latent, reverse=self.reverse,
            discriminator_a=self.disc_a, adapters=adapters, conditional_d=self.d_cfg.conditional,
        )  # fmt: skip

    def probes(self) -> dict[str, Probe]:
        recipe = self.run.recipe

        def prune() -> CoronetTask:
            hyper, controller, adapters = self.hyper()
            return self.task(hyper, recipe.prune.train, controller, adapters)

        def finetune() -> CoronetTask:  # the unpruned network: an upper bound of the pruned one's cost
            return self.task(student_base(self.run.teacher, recipe.separable), recipe.finetune)

        return {"prune": (recipe.prune.train, prune), "finetune": (recipe.finetune, finetune)}

    def train(self) -> None:
        run, stage = self.run, self.run.recipe.prune.train
        self.hypernet, self.controller, self.adapters = self.hyper()
        task = self.task(self.hypernet, stage, self.controller, self.adapters)
        target = run.target.macs
        _check_same_target(run.out_dir / "prune", target, run.options.resume)
        run.fit("prune", task, stage, inputs={"target_macs": target}, what="pruned towards")
        trained_stop = bool(self.controller.stopped)
        self.controller.finish(self.hypernet)  # deterministic: a resumed run takes the same decision
        self.pruning = self.controller.report(self.hypernet)
        self.pruning["reached_during_training"] = trained_stop

    def extract(self) -> Generator:
        from ...metrics.profile import profile_generator

        self.keep = self.hypernet.keep_indices()
        student = self.hypernet.extract().train()
        del self.hypernet
        macs = profile_generator(student, self.run.size).macs_paper
        if macs != self.pruning["reached_macs"]:
            raise ConfigError(
                f"exported generator {student.arch} profiles at {macs} MACs, pruning reported {self.pruning['reached_macs']}"
            )
        return student

    def finetune(self, student: Generator) -> Generator:
        run, stage = self.run, self.run.recipe.finetune
        if stage.enabled:
            adapters = self.adapters.narrowed(self.keep) if self.adapters is not None else None
            run.fit(
                "finetune",
                self.task(student, stage, adapters=adapters),
                stage,
                inputs={"arch": str(student.arch), "start": weights_digest(student)},
                derived=("arch", "start"),
            )
        self.quality = held_out_quality(student.eval(), run.held_out(8)) if run.kind != "unpaired" else {}
        self.separable = bool(student.options.get("separable", False))
        return student

    def details(self) -> dict[str, Any]:
        from ..common.macs import profile_dict

        run = self.run
        out = {
            "objective": self.objective,
            "separable": self.separable,
            "from_scratch": not run.has_teacher,
            "pruning": self.pruning,
            "held_out": self.quality,
        }
        if not run.has_teacher:  # the summary's teacher is null; the target was relative to this one
            out["start"] = {"arch": str(run.teacher.arch), **profile_dict(run.teacher_prof)}
        return out


def run_coronet(teacher, data, out_dir, options):  # noqa: ANN001, ANN201
    """``compress("coronet", ...)`` (see :class:`Coronet`)."""
    return run_method(Coronet, teacher, data, out_dir, options)
