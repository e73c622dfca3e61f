"""The two registered methods: ``gan-compression`` and ``fast-gan-compression``.

GAN Compression: distil a separable "mobile" teacher from the original (or accept one), prune it by
L1 magnitude to the supernet's largest widths, train the once-for-all supernet distilling from the
mobile teacher, search exhaustively under the budget, fine-tune. Fast GAN Compression: train the
supernet directly, distilling from the original teacher, then an evolutionary search, fine-tune.

Everything else (recipe, data, target, resume records, plan, gate, saving, summary) is the shared
runner's. The search resumes through its JSON cache; a run directory re-run with a new budget
reuses the supernet and every scored candidate, and fine-tunes the new subnet in its own folder.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import ConfigError
from ...export.saved import load_generator, save_generator
from ...models import Generator
from ...pruning import prune_by_importance
from ...training.distributed import on_main
from ...utils.files import atomic_write_json
from ..common.method import Method, Probe, register
from ..common.resume import weights_digest
from ..common.runner import run_method
from ..common.stage import run_stage, stage_steps  # noqa: F401  (re-exported: the stage runner)
from .distill import DistillTask, FeatureAdapters, default_points, discriminator_is_conditional, fixed_arch
from .prepare import (
    _vgg_loss,
    feature_metric_fn,
    match_teacher_gan_mode,
    pseudo_pairs,
    search_segmenter,
    with_unlabelled,
)
from .recipe import GanCompressionRecipe, StageConfig
from .search import (
    Budget,
    HeldOut,
    LatencyTable,
    MacsTable,
    SearchResult,
    SubnetEvaluator,
    evolutionary_search,
    exhaustive_search,
)
from .search_space import SearchSpace
from .supernet import ArchSampler, build_supernet, has_mobile_variant, mobile_arch, mobile_generator


class SupernetMethod(Method):
    """What both share: a once-for-all supernet, a search under the budget, fine-tuning the subnet."""

    recipe_class = GanCompressionRecipe
    target_kinds = ("macs", "latency_ms", "ratio")
    target_required = True
    takes_unlabelled = True

    @staticmethod
    def recipe_targets(recipe: GanCompressionRecipe) -> dict[str, float | None]:
        s = recipe.search
        return {"macs": s.budget_macs, "latency_ms": s.budget_latency_ms, "ratio": s.ratio}

    # -- prepare ----------------------------------------------------------------------------------
    def check(self) -> None:
        run = self.run
        where = f"{run.recipe_path}: supernet.search_space"
        self.space = SearchSpace.for_generator(run.teacher, run.recipe.supernet.search_space, where)

    def prepare(self) -> None:
        run = self.run
        if run.recipe.data.unlabelled is not None:
            run.train, run.notes["unlabelled"] = with_unlabelled(run.train, run.recipe, run.kind, run.teacher)
        if run.kind == "unpaired":
            recipe, note = pseudo_pairs(run.recipe)
            run.set_recipe(recipe, "unpaired", note)
        recipe, note = match_teacher_gan_mode(run.recipe)
        run.set_recipe(recipe, "gan_mode", note)
        # An unreachable budget fails now, not after training (the search checks again on the real supernet).
        if self.checks_budget_early():
            latency = run.target.kind == "latency_ms"
            with contextlib.nullcontext() if latency else torch.device("meta"):
                probe = build_supernet(run.teacher, self.space, self.probe_separable())
            self.budget(probe).check_reachable(self.space)
        recipe = run.recipe
        self.segmentation = search_segmenter(recipe, run.data) if recipe.search.metric == "miou" else {}

    def checks_budget_early(self) -> bool:
        """Whether the supernet's widths are known before training (to check the budget on them)."""
        return True

    def probe_separable(self) -> bool | None:
        return self.run.recipe.supernet.separable

    def budget(self, supernet: Generator) -> Budget:
        """The search's budget on ``supernet``: the run's target as MACs or as measured latency."""
        run, s = self.run, self.run.recipe.search
        if run.target.kind == "latency_ms":
            cache = run.out_dir / "latency_cache.json"
            table = LatencyTable(supernet, run.size, cache, s.latency_repeats, s.latency_warmup)
            return Budget("latency_ms", float(run.target.value), table)
        return Budget(
            "macs", float(run.target.macs), MacsTable(supernet, run.size, run.out_dir / "macs_cache.json")
        )

    def task(
        self,
        student: Generator,
        teacher: Generator,
        stage: StageConfig,
        sampler=None,
        adapters=None,
        disc=None,
    ) -> tuple[DistillTask, str]:
        """The distillation task of one stage (adapters and discriminator fresh unless given)."""
        run, loss = self.run, self.run.recipe.loss
        points = tuple(loss.points) if loss.points is not None else default_points(teacher)
        if adapters is None and loss.distill > 0:
            s_ch, t_ch = student.feature_channels(), teacher.feature_channels()
            adapters = FeatureAdapters({p: s_ch[p] for p in points}, {p: t_ch[p] for p in points})
        note = "continued from the previous stage"
        if disc is None and loss.gan > 0:
            disc, note = run.discriminator()
        out_ch = int(teacher.options.get("out_channels", 3))
        conditional = run.recipe.discriminator.conditional
        if disc is not None:
            conditional = discriminator_is_conditional(disc, out_ch)
        vgg = _vgg_loss(loss.vgg_source) if loss.vgg > 0 else None
        task = DistillTask(
            student, teacher, disc, adapters, loss, stage, sampler, vgg=vgg, conditional_d=conditional
        )
        return task, note

    def probes(self) -> dict[str, Probe]:
        run, recipe = self.run, self.run.recipe

        def supernet() -> DistillTask:
            net = build_supernet(run.teacher, self.space, recipe.supernet.separable)
            sampler = ArchSampler(self.space, recipe.supernet.sampling, run.options.seed)
            return self.task(net, run.frozen, recipe.supernet.train, sampler)[0]

        def finetune() -> DistillTask:  # the largest subnet: an upper bound of the chosen one's cost
            net = build_supernet(run.teacher, self.space, recipe.supernet.separable)
            return self.task(
                net.extract_subnet(self.space.largest()), run.frozen, recipe.finetune, fixed_arch()
            )[0]

        return {"supernet": (recipe.supernet.train, supernet), "finetune": (recipe.finetune, finetune)}

    # -- train ------------------------------------------------------------------------------------
    def mobile_teacher(self) -> Generator | None:
        """The network the supernet distils from (None: the teacher)."""
        return None

    def supernet_start(self, mobile: Generator | None) -> tuple[Generator | None, nn.Module | None]:
        """The network the supernet starts from (None: fresh weights) and the discriminator it
        continues with (None: a fresh one)."""
        return mobile, None

    def train(self) -> None:
        run, recipe = self.run, self.run.recipe
        mobile = self.mobile_teacher()
        self.distill_from = run.frozen if mobile is None else mobile
        if recipe.supernet.init == "teacher":  # the teacher's most important channels (supernet.init)
            init_from, disc = run.frozen, None
        else:
            init_from, disc = self.supernet_start(mobile)
        order = "importance" if recipe.supernet.init == "teacher" else "index"
        self.supernet = build_supernet(
            run.teacher, self.space, recipe.supernet.separable, init_from=init_from, order=order
        )
        sampler = ArchSampler(self.space, recipe.supernet.sampling, run.options.seed)
        stage = recipe.supernet.train
        self.supernet_task, run.notes["discriminator"] = self.task(
            self.supernet, self.distill_from, stage, sampler, disc=disc
        )
        if stage.enabled:
            inputs, derived = {"search_space": str(self.space)}, ()
            if recipe.distill is not None:  # it starts from an earlier stage's weights: over when they change
                inputs["start"], derived = weights_digest(self.supernet), ("start",)
            run.fit("supernet", self.supernet_task, stage, inputs=inputs, derived=derived)
        meta = {"method": self.name, "stage": "supernet", "search_space": str(self.space)}
        on_main(lambda: save_generator(self.supernet, run.out_dir / "supernet" / "generator", extra=meta))

    # -- extract: the search ----------------------------------------------------------------------
    def held_out(self) -> HeldOut:
        """The held-out slice (scored) and calibration batches (BatchNorm statistics), on the device."""
        from ..common.data import slice_id

        run, s = self.run, self.run.recipe.search
        batches = run.held_out(s.eval_batch_size)
        calib_idx = run.train_idx[: s.calibration_batches * s.eval_batch_size]
        calibration = [(x, kw) for x, _, kw in run.held_out(s.eval_batch_size, calib_idx)]
        return HeldOut(
            inputs=[b[0] for b in batches],
            reals=[b[1] for b in batches],
            extras=[b[2] for b in batches],
            slice_id=slice_id(run.evaluation, run.held_idx),
            calibration=calibration,
        )

    def search(self) -> SearchResult:
        run, s = self.run, self.run.recipe.search
        budget = self.budget(self.supernet)
        self.supernet.eval()
        evaluator = SubnetEvaluator(
            self.supernet, self.held_out(), s.metric, target=s.metric_target, teacher=run.frozen,
            cache_path=run.out_dir / "search_cache.json",
            feature_metric=feature_metric_fn() if s.metric in ("fid", "kid") else None,
            extractor=s.extractor, **self.segmentation,
        )  # fmt: skip
        if s.strategy == "exhaustive":
            return exhaustive_search(self.space, budget, evaluator, s.max_candidates, progress=True)
        return evolutionary_search(
            self.space, budget, evaluator, population=s.population, generations=s.generations,
            parent_ratio=s.parent_ratio, mutation_ratio=s.mutation_ratio, mutate_prob=s.mutate_prob,
            weighted_sample=s.weighted_sample, weight_strategy=s.weight_strategy,
            seed=s.seed + run.options.seed, progress=True,
        )  # fmt: skip

    def extract(self) -> Generator:
        from ...metrics.profile import profile_generator

        self.found = found = self.search()
        atomic_write_json(self.run.out_dir / "search.json", found.to_dict())
        print(
            f"{self.name}: search: {found.strategy} over {found.candidates} candidates ({found.evaluations} "
            f"scored in this run), {found.metric} {found.score:.4g}: {found.arch}",
            flush=True,
        )
        student = self.supernet.extract_subnet(self.found.arch).train()
        macs = profile_generator(student, self.run.size).macs_paper
        if self.found.budget_kind == "macs" and macs != int(self.found.cost):
            raise ConfigError(
                f"exported subnet {self.found.arch} profiles at {macs} MACs, the search used {self.found.cost}"
            )
        return student

    # -- finetune ---------------------------------------------------------------------------------
    def finetune(self, student: Generator) -> Generator:
        run, stage = self.run, self.run.recipe.finetune
        if stage.enabled:
            first = self.supernet_task
            adapters = (
                first.adapters.narrowed(student.feature_channels()) if first.adapters is not None else None
            )
            task, _ = self.task(
                student, self.distill_from, stage, fixed_arch(None), adapters, first.discriminator
            )
            # one run directory per chosen arch: a re-run with a new budget must not resume another subnet
            arch = str(self.found.arch)
            run.fit(
                "finetune",
                task,
                stage,
                run_dir=run.out_dir / "finetune" / arch,
                inputs={"arch": arch, "start": weights_digest(student)},
                derived=("arch", "start"),
            )
        return student

    def details(self) -> dict[str, Any]:
        return {
            "search_space": str(self.space),
            "search": {k: v for k, v in self.found.to_dict().items() if k != "history"},
        }


@register
class FastGanCompression(SupernetMethod):
    """Fast GAN Compression: supernet distilled from the teacher → evolutionary search → fine-tune → export.

    Example:
        >>> compress("fast-gan-compression", teacher, root, "runs/fgc", MethodOptions(budget_macs=3e9))
    """

    name = "fast-gan-compression"
    recipe_folder = "fast_gan_compression"

    def check(self) -> None:
        if self.run.recipe.distill is not None:
            raise ConfigError(
                f"{self.run.recipe_path}: distill: the fixed-width pre-distillation is a GAN Compression "
                "stage; Fast GAN Compression trains the supernet directly (remove the distill block)"
            )
        super().check()


@register
class GanCompression(SupernetMethod):
    """GAN Compression: mobile teacher → pruned supernet → exhaustive search → fine-tune → export.

    Example:
        >>> compress("gan-compression", teacher, root, "runs/gc", MethodOptions(ratio=0.1))
    """

    name = "gan-compression"
    recipe_folder = "gan_compression"

    def check(self) -> None:
        super().check()
        run, dc = self.run, self.run.recipe.distill
        if dc is None:
            return
        arch, where = self.distill_arch(), f"{run.recipe_path}: distill.student_ngf"
        if not self.space.largest().fits_within(arch):
            raise ConfigError(
                f"{where}: the supernet starts from the distilled student ({arch}), but the search "
                f"space's largest widths {self.space.largest()} are wider; give a student_ngf at least "
                "the space's largest width (or null: the space's largest widths)"
            )
        mt = run.recipe.mobile_teacher
        if mt.path is None:  # the mobile teacher's widths are known now (else when it is loaded)
            widths = mobile_arch(run.teacher, mt.base_width) if self.trains_mobile() else run.teacher.arch
            self.check_student_fits(widths, arch)

    def distill_arch(self) -> ArchSpec:
        """The pre-distilled student's widths: ``distill.student_ngf`` in every group, or the space's largest."""
        n = self.run.recipe.distill.student_ngf
        if n is None:
            return self.space.largest()
        return ArchSpec(self.run.teacher.family, tuple(n for _ in self.run.teacher.width_groups))

    def check_student_fits(self, mobile: ArchSpec, student: ArchSpec) -> None:
        if not student.fits_within(mobile):
            raise ConfigError(
                f"{self.run.recipe_path}: distill.student_ngf: the student {student} starts from the mobile "
                f"teacher's most important channels, but it is wider than the mobile teacher ({mobile})"
            )

    def checks_budget_early(self) -> bool:
        mt = self.run.recipe.mobile_teacher
        return mt.path is None and mt.base_width is None

    def probe_separable(self) -> bool | None:
        return None

    def trains_mobile(self) -> bool:
        mt, teacher = self.run.recipe.mobile_teacher, self.run.teacher
        return mt.path is None and has_mobile_variant(teacher) and mt.train.enabled

    def probes(self) -> dict[str, Probe]:
        run, mt, dc = self.run, self.run.recipe.mobile_teacher, self.run.recipe.distill
        probes = super().probes()
        stages: dict[str, Probe] = {}

        def probe_mobile() -> Generator:  # the stage's input, untrained: only its cost matters here
            if mt.path is not None:
                return load_generator(mt.path).eval().requires_grad_(False)
            if self.trains_mobile():
                return mobile_generator(run.frozen, mt.base_width).eval().requires_grad_(False)
            return run.frozen

        if self.trains_mobile():

            def mobile() -> DistillTask:
                return self.task(mobile_generator(run.frozen, mt.base_width), run.frozen, mt.train)[0]

            stages["mobile_teacher"] = (mt.train, mobile)
        if dc is not None and dc.train.enabled:

            def distill() -> DistillTask:
                teacher = probe_mobile()
                self.check_student_fits(teacher.arch, self.distill_arch())
                student = prune_by_importance(teacher, self.distill_arch()).train()
                return self.task(student, teacher, dc.train, fixed_arch())[0]

            stages["distill"] = (dc.train, distill)
        return {**stages, **probes}

    def mobile_teacher(self) -> Generator:
        """The separable teacher distilled here, or ``mobile_teacher.path``, or the teacher itself."""
        run, mt = self.run, self.run.recipe.mobile_teacher
        self.mobile_disc = None
        if mt.path is not None:
            mobile, note = load_generator(mt.path), f"loaded from {mt.path}"
        elif self.trains_mobile():
            mobile = mobile_generator(run.frozen, mt.base_width)
            task, run.notes["mobile_teacher_discriminator"] = self.task(mobile, run.frozen, mt.train)
            run.fit("mobile_teacher", task, mt.train)
            self.mobile_disc = task.discriminator
            meta = {"method": self.name, "stage": "mobile_teacher"}
            on_main(lambda: save_generator(mobile, run.out_dir / "mobile_teacher" / "generator", extra=meta))
            family = {"resnet": "ResNet", "spade": "SPADE", "munit": "MUNIT"}.get(
                mobile.family, mobile.family
            )
            note = f"separable {family} distilled from the teacher"
        else:
            mobile, note = (
                run.frozen,
                (
                    "the teacher itself (its family has no separable variant, it is separable already, "
                    "or mobile_teacher.train is empty)"
                ),
            )
        run.notes["mobile_teacher"] = note
        return mobile.eval().requires_grad_(False)

    def supernet_start(self, mobile: Generator) -> tuple[Generator, nn.Module | None]:
        """Without ``distill``: the mobile teacher (L1-pruned into the supernet by ``build_supernet``).
        With it: the official pre-distillation stage's student, and its discriminator."""
        run, dc = self.run, self.run.recipe.distill
        if dc is None:
            run.notes["distill"] = (
                "no distill block in the recipe: no fixed-width pre-distillation; the supernet starts from "
                "the mobile teacher L1-pruned to the search space's largest widths"
            )
            return mobile, None
        arch = self.distill_arch()
        self.check_student_fits(mobile.arch, arch)
        # the official weight transfer: each layer keeps its most important (L1) channels of the mobile teacher
        student = prune_by_importance(mobile, arch).train()
        disc = self.mobile_disc  # the official distill.sh restores the mobile stage's D
        if dc.train.enabled:
            task, run.notes["distill_discriminator"] = self.task(
                student, mobile, dc.train, fixed_arch(), disc=disc
            )
            run.fit(
                "distill",
                task,
                dc.train,
                inputs={"student": str(arch), "start": weights_digest(student)},
                derived=("start",),
            )
            disc = task.discriminator
            how = "distilled from the mobile teacher"
        else:
            how = "not trained (distill.train is empty)"
        meta = {"method": self.name, "stage": "distill", "arch": str(arch)}
        save_generator(student, run.out_dir / "distill" / "generator", extra=meta)
        run.notes["distill"] = (
            f"fixed-width student {arch} from the mobile teacher's most important channels, {how}; "
            "the supernet starts from it"
            + (
                ""
                if arch == self.space.largest()
                else f", L1-pruned to the space's largest {self.space.largest()}"
            )
        )
        return student.eval(), disc


def run_gan_compression(teacher, data, out_dir, options):  # noqa: ANN001, ANN201
    """``compress("gan-compression", ...)`` (see :class:`GanCompression`)."""
    return run_method(GanCompression, teacher, data, out_dir, options)


def run_fast_gan_compression(teacher, data, out_dir, options):  # noqa: ANN001, ANN201
    """``compress("fast-gan-compression", ...)`` (see :class:`FastGanCompression`)."""
    return run_method(FastGanCompression, teacher, data, out_dir, options)
