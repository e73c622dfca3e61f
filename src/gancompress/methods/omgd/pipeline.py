"""The registered ``omgd`` method: online multi-granularity distillation (Ren et al., ICCV 2021).

1. prepare: the student's widths (the teacher's family and widths, every one scaled by the largest
   factor whose paper MACs fit the target), a wider teacher (the given teacher's architecture, or a
   fraction of it) and a deeper one (the student's widths with extra expansion residual blocks),
   both with fresh weights as the official code, their discriminator(s), and the VGG16.
2. train (stage ``distill``): teachers and student trained together (:class:`OmgdTask`): the teachers
   by the pix2pix or CycleGAN objective, the student only by distillation from them.
3. extract: the trained student is already a plain generator of the teacher's family; it is saved as
   it is (no supernet, no pruning, no fine-tuning).

The given teacher supplies the family, its options (image channels, norm, blocks, …) and the wider
teacher's widths; its weights are not trained from (``teachers.init: teacher`` starts the wider
teacher from them) and it stays the reference of the quality gate.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from ...arch import ArchSpec
from ...errors import BudgetError, ConfigError
from ...models import Generator
from ..common.macs import MacsTable
from ..common.method import Method, Probe, register
from ..common.runner import run_method
from .deep import DEEP_FAMILIES, deep_teacher
from .losses import ChannelDistillation
from .recipe import OmgdRecipe
from .task import OmgdTask, init_normal

# The official mapping layers: ResNet ``model.9/12/15/18`` (the trunk's input and the outputs of
# blocks 3, 6, 9); U-Net: points of 2, 4 and 8 × ngf channels, here the decoder's feature points of
# those widths (the official fourth point, a 16 × ngf concatenation, is not a feature point here).
DEFAULT_POINTS = {
    "resnet": ("trunk_in", "block3", "block6", "block9"),
    "unet": ("decoder2", "decoder3", "decoder4"),
}


def scaled_arch(arch: ArchSpec, k: int, of: int) -> ArchSpec:
    """``arch`` with every width times ``k / of`` (rounded, at least 1)."""
    return ArchSpec(arch.family, tuple(max(1, round(w * k / of)) for w in arch.widths))


def widths_for_target(teacher_arch: ArchSpec, macs, target: float) -> tuple[ArchSpec, float]:
    """The widest uniform scaling of ``teacher_arch`` whose paper MACs (``macs(arch)``) are within ``target``.

    Returns the arch and its scale (k / max width). MACs grow with k, so a bisection finds it.

    Example:
        >>> arch, scale = widths_for_target(teacher.arch, MacsTable(teacher, (256, 256)), 2.7e9)
    """
    top = max(teacher_arch.widths)
    if macs(scaled_arch(teacher_arch, 1, top)) > target:
        smallest = macs(scaled_arch(teacher_arch, 1, top))
        raise BudgetError(
            f"omgd: the MACs target {target:.6g} is below the narrowest student of this family "
            f"({scaled_arch(teacher_arch, 1, top)}: {smallest} MACs)"
        )
    lo, hi = 1, top  # macs(lo) <= target; find the largest such k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if macs(scaled_arch(teacher_arch, mid, top)) <= target:
            lo = mid
        else:
            hi = mid - 1
    return scaled_arch(teacher_arch, lo, top), lo / top


def _options(teacher: Generator, separable: bool | None) -> dict[str, Any]:
    options = dict(teacher.options)
    if separable is not None:
        if teacher.family != "resnet":
            raise ConfigError(f"student.separable: family {teacher.family!r} has no separable variant")
        options["separable"] = separable
    return options


def _swapped(options: dict[str, Any]) -> dict[str, Any]:
    out = dict(options)
    out["in_channels"], out["out_channels"] = options["out_channels"], options["in_channels"]
    return out


@torch.no_grad()
def held_out_quality(nets: dict[str, nn.Module], batches: list) -> dict[str, dict[str, float]]:
    """Mean PSNR (dB) and L1 against the ground truth of each network on held-out ``(x, y, kw)`` batches."""
    from ...metrics.paired import l1, psnr

    out: dict[str, dict[str, float]] = {}
    if not batches:
        return out
    for name, net in nets.items():
        was = net.training
        net.eval()
        fakes = [(net(x), y) for x, y, _ in batches]
        net.train(was)
        out[name] = {
            "psnr": float(torch.cat([psnr(f, y) for f, y in fakes]).mean()),
            "l1": float(torch.cat([l1(f, y) for f, y in fakes]).mean()),
        }
    out["images"] = sum(x.shape[0] for x, _, _ in batches)  # type: ignore[assignment]
    return out


@register
class Omgd(Method):
    """OMGD: a wider and a deeper teacher trained online; the student distilled from both, no discriminator.

    Example:
        >>> compress("omgd", teacher, root, "runs/omgd", MethodOptions(ratio=0.04))
    """

    name = "omgd"
    recipe_class = OmgdRecipe
    recipe_folder = "omgd"
    refused_kinds = ("semantic",)

    @staticmethod
    def check_teacher(teacher: Generator) -> None:
        if teacher.family not in DEEP_FAMILIES:
            raise ConfigError(f"omgd supports the families {list(DEEP_FAMILIES)}, not {teacher.family!r}")
        if teacher.family == "resnet" and teacher.options.get("layout") == "blocks":
            raise ConfigError("omgd: a ResNet teacher with layout 'blocks' is not supported (use thirds)")

    @staticmethod
    def recipe_targets(recipe: OmgdRecipe) -> dict[str, float | None]:
        return {"macs": recipe.target.budget_macs, "ratio": recipe.target.ratio}

    # -- stages ---------------------------------------------------------------------------------
    def check(self) -> None:
        run, recipe = self.run, self.run.recipe
        teacher = run.teacher
        self.options = _options(teacher, recipe.student.separable)
        if run.target.macs is None and recipe.student.arch is None:
            raise ConfigError(
                "omgd: no target for the student's widths: pass --budget-macs or --ratio, set target.ratio "
                "in the recipe, or fix student.arch"
            )
        cfg = recipe.teachers
        if cfg.init == "teacher" and (cfg.wide_scale != 1 or self.options != dict(teacher.options)):
            raise ConfigError(
                "teachers.init teacher: the wider teacher starts from the given teacher's weights only at "
                "teachers.wide_scale 1 with the teacher's own separable choice"
            )
        points = recipe.loss.points if recipe.loss.points is not None else DEFAULT_POINTS[teacher.family]
        known = getattr(type(teacher), "feature_points", ()) or teacher.feature_points
        unknown = sorted(set(points) - set(known))
        if recipe.loss.cd > 0 and unknown:
            raise ConfigError(
                f"loss.points: unknown feature point(s) {unknown} for {teacher.family}; known: {list(known)}"
            )
        self.points = tuple(points)

    def prepare(self) -> None:
        run, recipe = self.run, self.run.recipe
        teacher = run.teacher
        objective = recipe.loss.objective
        self.objective = (
            objective if objective != "auto" else "cyclegan" if run.kind == "unpaired" else "pix2pix"
        )
        if self.objective == "pix2pix" and run.kind == "unpaired":
            raise ConfigError(
                "loss.objective pix2pix needs paired data; this dataset is unpaired (use cyclegan)"
            )
        if objective == "auto" and self.objective == "cyclegan" and recipe.loss.gan_mode != "lsgan":
            # a recipe written for both kinds (fonts) names the pix2pix GAN; CycleGAN's is LSGAN
            loss = dataclasses.replace(recipe.loss, gan_mode="lsgan")
            run.set_recipe(
                dataclasses.replace(recipe, loss=loss), "gan_mode",
                f"unpaired data: the CycleGAN objective with LSGAN, not the recipe's {recipe.loss.gan_mode}",
            )  # fmt: skip
            recipe = run.recipe
        deep = recipe.teachers.deep
        self.with_deep = (self.objective == "pix2pix") if deep == "auto" else bool(deep)
        with torch.device("meta"):
            base = type(teacher).from_options(teacher.arch, self.options)
        table = MacsTable(base, run.size, run.out_dir / "macs_cache.json")
        if recipe.student.arch is not None:
            self.arch = base.parse_arch(recipe.student.arch)
            self.scale = None
            if run.target.macs is not None and table(self.arch) > run.target.macs:
                raise BudgetError(
                    f"student.arch {self.arch} costs {table(self.arch)} MACs, above the target {run.target.macs:.6g}"
                )
        else:
            self.arch, self.scale = widths_for_target(teacher.arch, table, run.target.macs)
        top = max(teacher.arch.widths)
        self.wide_arch = scaled_arch(teacher.arch, max(1, round(top * recipe.teachers.wide_scale)), top)
        self.vgg = None
        if recipe.loss.uses_vgg:
            from ...metrics.vgg import load_vgg16_features
            from .losses import STYLE_LAYERS

            self.vgg = load_vgg16_features(recipe.loss.vgg_source, layers=STYLE_LAYERS)
        run.notes["teachers"] = (
            f"a wider teacher ({self.wide_arch}) "
            + (f"and a deeper one (the student's widths x {recipe.teachers.deep_scale:g}, "
               f"{recipe.teachers.deep_blocks} expansion blocks per point) " if self.with_deep else "")
            + ("trained online from fresh weights, as the official code; the given teacher is the gate's reference"
               if recipe.teachers.init == "scratch" else "trained online, the wider one from the given teacher's weights")
        )  # fmt: skip
        run.notes["student"] = "trained by distillation only (no discriminator), from fresh weights"
        if self.objective == "cyclegan":
            run.notes["cyclegan"] = (
                "each teacher trains with a B→A generator of its own architecture and two discriminators "
                "(not exported); the student distils from the teachers' A→B outputs"
            )

    def build(self) -> OmgdTask:
        """A fresh task: the student, the teachers, their discriminators and the connectors."""
        run, recipe = self.run, self.run.recipe
        cls = type(run.teacher)
        student = init_normal(cls.from_options(self.arch, self.options))
        if recipe.teachers.init == "teacher":
            wide: Generator = copy.deepcopy(run.frozen).train().requires_grad_(True)
        else:
            wide = init_normal(cls.from_options(self.wide_arch, self.options))
        teachers: dict[str, nn.Module] = {"wide": wide}
        if self.with_deep:
            teachers["deep"] = init_normal(
                deep_teacher(student, recipe.teachers.deep_scale, recipe.teachers.deep_blocks)
            )
        reverses = None
        if self.objective == "cyclegan":
            reverses = {"wide": init_normal(cls.from_options(self.wide_arch, _swapped(self.options)))}
            if self.with_deep:
                rev_student = cls.from_options(self.arch, _swapped(self.options))
                reverses["deep"] = init_normal(
                    deep_teacher(rev_student, recipe.teachers.deep_scale, recipe.teachers.deep_blocks)
                )
        d_cfg = dataclasses.replace(
            recipe.discriminator, conditional=recipe.discriminator.conditional and self.objective == "pix2pix"
        )
        self.conditional = d_cfg.conditional
        shared = recipe.teachers.shared_discriminator
        keys = ["shared"] if shared else list(teachers)
        d_of = {n: "shared" if shared else n for n in teachers}
        discs, self.d_note = {}, "none (loss.gan is 0)"
        discs_a = {} if self.objective == "cyclegan" else None
        if recipe.loss.gan > 0:
            for k in keys:
                discs[k], self.d_note = run.discriminator(d_cfg)
                if d_cfg.init_from is None:
                    init_normal(discs[k])
                if discs_a is not None:
                    discs_a[k] = init_normal(
                        run.discriminator(dataclasses.replace(d_cfg, init_from=None), swap=True)[0]
                    )
        else:
            discs = {k: nn.Identity() for k in keys}
            discs_a = {k: nn.Identity() for k in keys} if discs_a is not None else None
        cd = None
        if recipe.loss.cd > 0:
            s_ch, t_ch = student.feature_channels(), wide.feature_channels()
            cd = ChannelDistillation({p: s_ch[p] for p in self.points}, {p: t_ch[p] for p in self.points})
        return OmgdTask(
            student, teachers, discs, d_of, recipe.loss, recipe.train, objective=self.objective,
            every=recipe.teachers.every, reverses=reverses, discriminators_a=discs_a, cd=cd, vgg=self.vgg,
            conditional_d=self.conditional,
        )  # fmt: skip

    def probes(self) -> dict[str, Probe]:
        return {"distill": (self.run.recipe.train, self.build)}

    def inputs(self) -> dict[str, Any]:
        recipe = self.run.recipe
        return {
            "arch": str(self.arch),
            "target_macs": self.run.target.macs,
            "objective": self.objective,
            "wide": str(self.wide_arch),
            "deep": self.with_deep,
            "teachers_init": recipe.teachers.init,
        }

    def train(self) -> None:
        run = self.run
        self.task = self.build()
        run.fit("distill", self.task, run.recipe.train, inputs=self.inputs(), what="distilled towards")

    def extract(self) -> Generator:
        # The student trained as it is: OMGD has no supernet and nothing to remove.
        return self.task.student

    def finetune(self, student: Generator) -> Generator:
        run = self.run
        nets = {"student": student, **{f"teacher_{k}": t for k, t in self.task.teachers.items()}}
        self.quality = held_out_quality(nets, run.held_out(8)) if run.kind != "unpaired" else {}
        return student

    def details(self) -> dict[str, Any]:
        task = self.task
        recipe = self.run.recipe

        def params(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        return {
            "objective": self.objective,
            "student": {
                "arch": str(self.arch),
                "width_scale": self.scale,
                "separable": bool(self.options.get("separable", False)),
            },
            "teachers": {
                "wide": {"arch": str(self.wide_arch), "params": params(task.teachers["wide"])},
                "deep": {"params": params(task.teachers["deep"]), "blocks": recipe.teachers.deep_blocks}
                if "deep" in task.teachers
                else None,
                "init": recipe.teachers.init,
                "every": recipe.teachers.every,
            },
            "discriminators": {"shared": recipe.teachers.shared_discriminator, "note": self.d_note},
            "loss": {
                "ssim": recipe.loss.ssim,
                "style": recipe.loss.style,
                "feature": recipe.loss.feature,
                "tv": recipe.loss.tv,
                "cd": recipe.loss.cd,
                "points": list(self.points) if recipe.loss.cd > 0 else [],
                "vgg": self.vgg.name if self.vgg is not None else None,
            },  # fmt: skip
            "held_out": self.quality,
        }


def run_omgd(teacher, data, out_dir, options):  # noqa: ANN001, ANN201
    """``compress("omgd", ...)`` (see :class:`Omgd`)."""
    return run_method(Omgd, teacher, data, out_dir, options)
