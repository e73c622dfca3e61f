"""The registered ``gan-slimming`` method: slim while distilling, remove channels, fine-tune, export.

1. The student starts as the teacher with a learnable γ/β on every norm, optionally fake-quantised
   (GS-8). It trains with the GAN Slimming objective; γ takes proximal steps towards sparsity.
2. With a MACs target (``--budget-macs`` / ``--ratio``), the proximal step stops before the live
   widths fall below the target (so a large ρ cannot overshoot it), and a final global threshold on
   |γ| switches off the weakest channels until the target is met; without one, ρ alone decides.
3. The γ = 0 channels are removed from every coupled layer (exactly: the output is checked), giving a
   plain generator of the same family at smaller widths.
4. It is fine-tuned with the same objective (still fake-quantised for GS-8); beside the saved
   generator (GS-8: weights baked on their int8 grid) go an fp32 ONNX graph and an int8 QDQ ONNX graph
   calibrated on training inputs and run in ONNX Runtime.

Recipe, data, target, resume records, plan, gate, saving and summary are the shared runner's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ...errors import BudgetError, ConfigError
from ...models import Generator
from ..common.method import Method, Probe, register
from ..common.resume import weights_digest
from ..common.runner import run_method
from .quant import QuantizedGenerator
from .recipe import GanSlimmingRecipe
from .schedule import CosineLR
from .slim import (
    alive_channels,
    check_supported,
    remove_off_channels,
    scale_groups,
    slimmable_student,
    threshold_to_budget,
    widths_at,
)
from .task import GanSlimmingTask, OutputDistillation


@torch.no_grad()
def quality_vs_teacher(run, teacher: Generator, inputs: list[torch.Tensor]) -> dict[str, float]:  # noqa: ANN001
    """Mean PSNR (dB), SSIM and L1 of ``run(x)`` against the teacher's output on held-out inputs."""
    from ...metrics.paired import l1, psnr, ssim

    if not inputs:
        return {}
    teacher.eval()
    p, s, d = [], [], []
    for x in inputs:
        ref, out = teacher(x).cpu(), run(x).cpu()
        p.append(psnr(out, ref))
        s.append(ssim(out, ref))
        d.append(l1(out, ref))
    return {
        "psnr": float(torch.cat(p).mean()),
        "ssim": float(torch.cat(s).mean()),
        "l1": float(torch.cat(d).mean()),
        "images": sum(x.shape[0] for x in inputs),
    }


def export_int8(
    student: Generator, out_dir: Path, data: Path, size: int, count: int
) -> tuple[dict[str, str], Any]:
    """fp32 ONNX and int8 QDQ ONNX of ``student``; returns the paths and an ONNX Runtime session of the int8 one."""
    from ...export.int8 import calibration_inputs, quantize_onnx_int8
    from ...export.onnx import export_onnx, ort_session

    fp32 = export_onnx(student, out_dir / "student.onnx", size=(size, size))
    calib = calibration_inputs(student, data, count=count, size=size)
    int8 = quantize_onnx_int8(fp32, out_dir / "student.int8.onnx", calib)
    return {"onnx_fp32": str(fp32), "onnx_int8": str(int8)}, ort_session(int8)


@register
class GanSlimming(Method):
    """GAN Slimming: distillation + γ sparsity + quantisation in one minimax, then channel removal.

    Example:
        >>> compress("gan-slimming", teacher, root, "runs/gs8", MethodOptions(bits=8, budget_macs=1e8))
    """

    name = "gan-slimming"
    recipe_class = GanSlimmingRecipe
    recipe_folder = "gan_slimming"
    refused_kinds = ("semantic",)

    @staticmethod
    def check_teacher(teacher: Generator) -> None:
        check_supported(teacher)

    @staticmethod
    def recipe_targets(recipe: GanSlimmingRecipe) -> dict[str, float | None]:
        return {"macs": recipe.slim.budget_macs, "ratio": recipe.slim.ratio}

    # -- prepare ----------------------------------------------------------------------------------
    def check(self) -> None:
        recipe, options = self.run.recipe, self.run.options
        self.rho = recipe.slim.rho if options.rho is None else float(options.rho)
        self.bits = recipe.quant.bits if options.bits is None else int(options.bits)
        if self.rho < 0:
            raise ConfigError(f"--rho must be non-negative, got {self.rho}")
        if not 2 <= self.bits <= 32:
            raise ConfigError(f"--bits must be in [2, 32], got {self.bits}")
        if recipe.discriminator.conditional:
            raise ConfigError(
                "discriminator.conditional: GAN Slimming's D sees output images only (teacher real, student fake)"
            )

    def prepare(self) -> None:
        run, recipe = self.run, self.run.recipe
        self.distillation = self.output_distillation()
        self.disc, run.notes["discriminator"] = run.discriminator() if recipe.loss.gan > 0 else (None, "none")
        self.student, self.groups, self.quant = self.slimmable()
        self.macs_table = run.macs_table(self.student)
        if run.target.macs is not None:  # an unreachable target fails now, not after the slimming stage
            floor = widths_at(self.student, self.groups, math.inf)
            if self.macs_table(floor) > run.target.macs:
                raise BudgetError(
                    f"MACs target {run.target.macs:.4g} is below what one unit of width per gated group costs "
                    f"({floor}: {self.macs_table(floor):.4g} MACs, the smallest reachable); raise the target or "
                    "gate more groups (slim.groups)"
                )

    def output_distillation(self) -> OutputDistillation:
        loss, vgg = self.run.recipe.loss, None
        if loss.distill == "vgg":
            from ...metrics.vgg import load_vgg16_features

            layers = tuple(dict.fromkeys((loss.content_layer, "relu1_2", "relu2_2", "relu3_3", "relu4_3")))
            vgg = load_vgg16_features(loss.vgg_source, layers=layers)
            self.run.notes["distill"] = (
                f"VGG16 content ({loss.content_layer}) + Gram style loss on {vgg.name}"
            )
        return OutputDistillation(loss.distill, vgg, loss.content_layer, loss.style_weight)

    def slimmable(self) -> tuple[Generator, dict, QuantizedGenerator | None]:
        """The teacher with a γ on every norm, its gated width groups, and its fake quantisation."""
        run, recipe = self.run, self.run.recipe
        student = slimmable_student(run.frozen)
        groups = scale_groups(student, recipe.slim.groups)
        if not groups:
            raise ConfigError(
                f"no width group of this {run.teacher.family} generator is gated by a norm with a scale γ"
            )
        quant = self.attach_quant(student)
        return student, groups, quant

    def attach_quant(self, generator: Generator) -> QuantizedGenerator | None:
        if self.bits >= 32:
            return None
        return QuantizedGenerator.attach(
            generator, self.bits, self.run.recipe.quant.act_max, probe=self.run.frozen
        )

    def task(
        self, student: Generator, stage, groups=None, disc=None, target: bool = False
    ) -> GanSlimmingTask:  # noqa: ANN001
        run, recipe = self.run, self.run.recipe
        return GanSlimmingTask(
            student, run.frozen, self.disc if disc is None else disc, recipe.loss, stage,
            distillation=self.distillation, groups=groups, rho=self.rho if groups is not None else 0.0,
            lr_gamma=recipe.slim.lr_gamma, momentum=recipe.slim.momentum, weight_decay=recipe.weight_decay,
            target_macs=run.target.macs if target else None, macs=self.macs_table if target else None,
        )  # fmt: skip

    def probes(self) -> dict[str, Probe]:
        recipe = self.run.recipe

        def fresh(stage):  # noqa: ANN001, ANN202  (the finetune stage: at most the slim stage's cost)
            def factory() -> GanSlimmingTask:
                student, groups, _ = self.slimmable()
                disc = self.run.discriminator()[0] if recipe.loss.gan > 0 else None
                return self.task(student, stage, groups if stage is recipe.slim.train else None, disc)

            return factory

        return {
            "slim": (recipe.slim.train, fresh(recipe.slim.train)),
            "finetune": (recipe.finetune, fresh(recipe.finetune)),
        }

    # -- train, extract, finetune -----------------------------------------------------------------
    def lr_callbacks(self) -> list[CosineLR]:
        """``lr_schedule: cosine``: the official per-epoch cosine decay in place of the loop's linear one."""
        run = self.run
        if run.recipe.lr_schedule != "cosine":
            return []
        return [CosineLR(steps_per_epoch=max(1, len(run.train) // run.batch_size))]

    def train(self) -> None:
        run, recipe = self.run, self.run.recipe
        task = self.task(self.student, recipe.slim.train, self.groups, target=run.target.macs is not None)
        inputs = {"rho": self.rho, "bits": self.bits, "target_macs": run.target.macs}
        run.fit("slim", task, recipe.slim.train, inputs=inputs, callbacks=self.lr_callbacks())
        if self.quant is not None:
            self.quant.remove(
                bake=False
            )  # channel removal works on the latent weights; fine-tuning re-attaches
        self.sparsity = {
            "rho": self.rho,
            "alive_channels": alive_channels(self.student, self.groups),
            "channels": {g.name: g.channels for g in self.groups.values()},
            "arch_from_rho": str(widths_at(self.student, self.groups)),
            "stopped_at_target": bool(task.prox_stopped.item()),
        }
        self.control: dict[str, Any] = {"given": None}
        if run.target.macs is not None:  # reach the MACs target with a final threshold on |γ|
            self.control = {"given": run.target.kind, "value": run.target.value, "macs": run.target.macs}
            self.control.update(
                threshold_to_budget(self.student, self.groups, self.macs_table, run.target.macs)
            )

    def extract(self) -> Generator:
        slim = remove_off_channels(self.student, self.groups)  # the γ = 0 channels, exactly
        self.arch_removed = str(slim.arch)
        return slim

    def finetune(self, student: Generator) -> Generator:
        run, recipe = self.run, self.run.recipe
        ft_quant = self.attach_quant(student)
        if recipe.finetune.enabled:
            run.fit(
                "finetune",
                self.task(student, recipe.finetune),
                recipe.finetune,
                inputs={"arch": str(student.arch), "start": weights_digest(student)},
                derived=("arch", "start"),
                callbacks=self.lr_callbacks(),
            )
        self.quality: dict[str, Any] = {}
        student.eval()
        if ft_quant is not None:
            self.quality["fake_quant"] = quality_vs_teacher(student, run.frozen, self.held_inputs())
            ft_quant.remove(bake=True)  # the saved weights lie on the int8 grid GS-8 trained for
            run.notes["weights"] = f"weights baked on their learned {self.bits}-bit per-layer symmetric grid"
        self.final = student
        return student

    def held_inputs(self) -> list[torch.Tensor]:
        return [x for x, _, _ in self.run.held_out(8)]

    # -- export -----------------------------------------------------------------------------------
    def export(self, student: Generator) -> dict[str, str]:
        from ...export.onnx import run_session

        run, quant = self.run, self.run.recipe.quant
        self.quality["fp32"] = quality_vs_teacher(student, run.frozen, self.held_inputs())
        artifacts, sess = export_int8(
            student, run.out_dir, run.data, run.recipe.data.crop_size, quant.calibration_images
        )
        self.quality["onnx_int8"] = quality_vs_teacher(
            lambda x: run_session(sess, x.cpu()), run.frozen, self.held_inputs()
        )
        run.notes["int8"] = (
            "static QDQ int8 (ONNX Runtime quantize_static: per-channel symmetric int8 weights, uint8 activations "
            f"calibrated by min/max on {quant.calibration_images} training inputs), run in ONNX Runtime; "
            + (
                "the QAT-trained weights are on a per-layer int8 grid, the activation scales are re-calibrated, not "
                "exported from training"
                if self.bits < 32
                else "post-training quantisation of the GS-32 student"
            )
        )
        self.files = {
            "safetensors": (run.out_dir / "student" / "model.safetensors").stat().st_size,
            "onnx_fp32": Path(artifacts["onnx_fp32"]).stat().st_size,
            "onnx_int8": Path(artifacts["onnx_int8"]).stat().st_size,
        }
        return artifacts

    def details(self) -> dict[str, Any]:
        from ...metrics.profile import profile_generator

        run, t = self.run, self.run.teacher_prof
        p = profile_generator(self.final, run.size)
        return {
            "variant": f"GS-{self.bits}",
            "bits": self.bits,
            "arch_after_removal": self.arch_removed,
            # the paper's compression ratios: r_c on MACs, r_s on model size in bits (32-bit teacher)
            "r_c": t.macs_paper / max(p.macs_paper, 1),
            "r_s": t.params * 32 / max(p.params * self.bits, 1),
            "control": self.control,
            "reached_macs": p.macs_paper,
            "sparsity": self.sparsity,
            "quantisation": {
                "bits": self.bits,
                "act_max": run.recipe.quant.act_max,
                "inputs": self.quant.inputs if self.quant else {},
            },
            "held_out_vs_teacher": self.quality,
            "bytes_on_disk": getattr(self, "files", {}),
        }


def run_gan_slimming(teacher, data, out_dir, options):  # noqa: ANN001, ANN201
    """``compress("gan-slimming", ...)`` (see :class:`GanSlimming`)."""
    return run_method(GanSlimming, teacher, data, out_dir, options)
