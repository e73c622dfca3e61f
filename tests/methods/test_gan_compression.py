"""GAN Compression / Fast GAN Compression at tiny sizes: search space, supernet, distillation, search."""

from __future__ import annotations

import random

import pytest
import torch

from gancompress.arch import ArchSpec
from gancompress.errors import ArchSpecError, BudgetError, ConfigError
from gancompress.methods.gan_compression import (
    ArchSampler,
    Budget,
    DistillTask,
    FeatureAdapters,
    MacsTable,
    SearchSpace,
    SubnetEvaluator,
    build_supernet,
    evolutionary_search,
    exhaustive_search,
    recalibrate_batchnorm,
)
from gancompress.methods.gan_compression.recipe import LossConfig, StageConfig
from gancompress.methods.gan_compression.search import HeldOut
from gancompress.metrics.profile import profile_generator
from gancompress.models import create_generator

RESNET_GROUPS = ("stem", "down1", "trunk", "hidden1", "hidden2", "hidden3", "up1", "up2")


def tiny(family: str, **kw):
    torch.manual_seed(0)
    if family == "resnet":
        return create_generator("resnet", base_width=8, num_blocks=3, **kw)
    if family == "unet":
        return create_generator("unet", base_width=4, num_downs=5, **kw)
    if family == "spade":
        return create_generator(
            "spade", preset=None, label_channels=5, base_width=2, spade_hidden=8, size=(32, 32), **kw
        )
    return create_generator("munit", base_width=4, mlp_dim=16, num_res=2, style_downsample=2, **kw)


SPACES = {
    "resnet": "8|4_8|4_8|4_8|6|4_8|4_8|4_8|4_8|4",
    "unet": "4|2_4|2_4|2_4|2_4|2",
    "spade": "2|1_2|1_2|1_2|1_2|1_2|1_2|1_2|1",
    "munit": "4|2_4|2_4|2_4|2_4|2_4|2_4|2_4|2_4|2_4|2",
}


def space_for(g) -> SearchSpace:
    return SearchSpace.parse(g.family, tuple(x.name for x in g.width_groups), SPACES[g.family])


# -- search space ------------------------------------------------------------------------------------
def test_search_space_data_ops_and_string_round_trip():
    text = "48|32_48|32_48|40|32_48|40|32_48|40|32_48|40|32_48|32|24|16_48|32|24|16"
    space = SearchSpace.parse("resnet", RESNET_GROUPS, text)
    assert str(space) == text
    assert SearchSpace.parse("resnet", RESNET_GROUPS, str(space)) == space
    assert space.size == 2 * 2 * 3**4 * 4 * 4 == len(list(space.enumerate()))
    assert str(space.largest()) == "48_48_48_48_48_48_48_48"
    assert str(space.smallest()) == "32_32_32_32_32_32_16_16"
    rng = random.Random(3)
    samples = [space.sample(rng) for _ in range(50)]
    assert all(s in space for s in samples)
    assert len({str(s) for s in samples}) > 10
    assert [str(s) for s in [space.sample(random.Random(3)) for _ in range(2)]][0] == str(samples[0])
    mapping = space.to_mapping()
    assert SearchSpace.from_mapping("resnet", RESNET_GROUPS, mapping) == space
    assert ArchSpec.parse("resnet", "16_16_16_16_16_16_16_16") not in space


def test_search_space_rejects_bad_input_with_names():
    with pytest.raises(ArchSpecError, match="has 2 groups"):
        SearchSpace.parse("resnet", RESNET_GROUPS, "8|4_8")
    with pytest.raises(ArchSpecError, match="integers joined"):
        SearchSpace.parse("resnet", RESNET_GROUPS, "a_b_c_d_e_f_g_h")
    with pytest.raises(ConfigError, match=r"unknown \['trunkk'\]"):
        SearchSpace.from_mapping(
            "resnet", RESNET_GROUPS, {**{g: [8] for g in RESNET_GROUPS[:2]}, "trunkk": [8]}
        )


def test_arch_sampler_uniform_and_sandwich_are_functions_of_the_step():
    space = SearchSpace.parse("resnet", RESNET_GROUPS, SPACES["resnet"])
    uniform = ArchSampler(space, "uniform", seed=1)
    assert [str(a) for a in uniform(7)] == [str(a) for a in ArchSampler(space, "uniform", seed=1)(7)]
    assert len({str(uniform(s)[0]) for s in range(30)}) > 5
    sandwich = ArchSampler(space, "sandwich", seed=1)(4)
    assert sandwich[0] == space.largest() and sandwich[1] == space.smallest() and len(sandwich) == 3


# -- supernet vs exported subnet -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "family, kw",
    [
        ("resnet", {"separable": True}),
        ("resnet", {"separable": False}),
        ("unet", {}),
        ("spade", {}),
        ("munit", {}),
    ],
)
def test_supernet_at_spec_equals_exported_subnet(family, kw):
    teacher = tiny(family, **kw)
    space = space_for(teacher)
    supernet = build_supernet(teacher, space, separable=kw.get("separable"))
    # a few random weight changes so shared weights are not at their init symmetry
    with torch.no_grad():
        for p in supernet.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    supernet.eval()
    x = supernet.example_input((32, 32), batch=2)
    rng = random.Random(0)
    for arch in [space.smallest(), space.sample(rng), space.sample(rng)]:
        sub = supernet.extract_subnet(arch).eval()
        assert sub.arch == arch
        with torch.no_grad():
            torch.testing.assert_close(supernet(x, arch=arch), sub(x), rtol=1e-5, atol=1e-5)
        macs = MacsTable(supernet, (32, 32))(arch)
        assert profile_generator(sub, (32, 32)).macs_paper == macs


def test_gan_compression_init_prunes_the_mobile_teacher_to_the_largest_widths():
    mobile = tiny("resnet", separable=True)
    space = SearchSpace.parse("resnet", RESNET_GROUPS, "6|4_6_6_6_6_6_6_6")
    supernet = build_supernet(mobile, space, init_from=mobile)
    assert supernet.arch == space.largest()
    assert supernet.options["separable"] is True
    # the kept channels are the most important ones: the stem keeps its 6 largest-L1 filters
    norms = mobile.stem.weight.abs().flatten(1).sum(1)
    kept = torch.sort(torch.argsort(norms, descending=True)[:6]).values
    torch.testing.assert_close(supernet.stem.weight, mobile.stem.weight[kept])


# -- distillation ------------------------------------------------------------------------------------
def _paired_batch(teacher, n=2):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        b = teacher(a)
    return {"A": a, "B": b}


@pytest.mark.parametrize("sampling", ["uniform", "sandwich"])
def test_distillation_loss_decreases_on_a_tiny_problem(sampling):
    teacher = tiny("resnet").eval()
    space = space_for(teacher)
    supernet = build_supernet(teacher, space, separable=True)
    s_ch, t_ch = supernet.feature_channels(), teacher.feature_channels()
    adapters = FeatureAdapters({p: s_ch[p] for p in teacher.feature_points}, t_ch)
    loss = LossConfig(recon=10.0, recon_target="teacher", distill=1.0, gan=0.0)
    task = DistillTask(
        supernet, teacher, None, adapters, loss, StageConfig(lr_g=2e-3), ArchSampler(space, sampling, seed=0)
    )
    opts = task.configure_optimizers()
    batch = _paired_batch(teacher)
    first = [task.training_step(batch, s, opts) for s in range(3)]
    for s in range(3, 25):
        last = task.training_step(batch, s, opts)
    assert last["loss_distill"] < first[0]["loss_distill"]
    assert last["loss_g"] < 0.7 * first[0]["loss_g"]
    # the teacher is frozen and not part of the checkpointed state
    assert not any(k.startswith("_frozen") for k in task.state_dict())
    assert all(not p.requires_grad for p in teacher.parameters())


def test_vgg_term_is_gaugans_weighted_perceptual_loss_built_from_the_recipes_source(monkeypatch):
    """loss.vgg weighs the same loss the GauGAN teachers train with (weights 1/32 … 1 on relu1_1 … relu5_1)."""
    from gancompress.methods.gan_compression import pipeline
    from gancompress.metrics import vgg as vgg_mod

    torch.manual_seed(0)
    net = vgg_mod.VGG16Features(
        batch_norm=False, input_mode="imagenet_rgb", source="random", layers=vgg_mod.VGGPerceptualLoss.LAYERS
    )
    asked = []
    monkeypatch.setattr(
        vgg_mod, "load_vgg16_features", lambda source, layers: asked.append((source, layers)) or net
    )
    perceptual = pipeline._vgg_loss("craft")
    assert isinstance(perceptual, vgg_mod.VGGPerceptualLoss)
    assert asked == [("craft", vgg_mod.VGGPerceptualLoss.LAYERS)]

    teacher = tiny("resnet").eval()
    student = create_generator("resnet", base_width=4, num_blocks=3)
    loss = LossConfig(recon=0.0, distill=0.0, gan=0.0, vgg=10.0)
    with pytest.raises(ConfigError, match="VGG perceptual loss"):
        DistillTask(student, teacher, None, None, loss, StageConfig())
    task = DistillTask(student, teacher, None, None, loss, StageConfig(), vgg=perceptual)
    batch = _paired_batch(teacher)
    batch["B"] = batch["B"].flip(-1)  # a target the student does not already match
    with torch.no_grad():
        fake = student(batch["A"])
        expected = 10.0 * perceptual(fake, batch["B"])
        fake_f, real_f = perceptual.vgg.perceptual(fake), perceptual.vgg.perceptual(batch["B"])
        weighted = sum(
            w * torch.nn.functional.l1_loss(fake_f[n], real_f[n])
            for n, w in zip(perceptual.LAYERS, perceptual.WEIGHTS)
        )
    torch.testing.assert_close(expected, 10.0 * weighted)
    logs = task.training_step(batch, 0, task.configure_optimizers())
    assert logs["loss_vgg"] == pytest.approx(float(expected), rel=1e-5)
    assert not any("vgg" in k for k in task.state_dict())  # frozen, not checkpointed


def test_unlabelled_inputs_are_distilled_with_the_teachers_output_as_their_target():
    """A batch's ``U`` inputs add recon (against the teacher's output) and distillation terms, and
    training on them brings the student closer to the teacher on inputs like them."""
    teacher = tiny("resnet").eval()
    loss = LossConfig(recon=10.0, distill=1.0, gan=0.0)

    def task_for():
        torch.manual_seed(3)
        student = create_generator("resnet", base_width=4, num_blocks=3)
        s_ch, t_ch = student.feature_channels(), teacher.feature_channels()
        adapters = FeatureAdapters({p: s_ch[p] for p in teacher.feature_points}, t_ch)
        return DistillTask(student, teacher, None, adapters, loss, StageConfig(lr_g=2e-3))

    g = torch.Generator().manual_seed(2)
    # labelled inputs of one kind (flat images), unlabelled ones of another (smooth blotches)
    flat = torch.rand(2, 3, 1, 1, generator=g).expand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        labelled = {"A": flat, "B": teacher(flat)}
    unlabelled = [
        torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=g) * 2 - 1, size=32, mode="bilinear")
        for _ in range(9)
    ]
    task = task_for()
    with torch.no_grad():
        fake, s_feats = task.student(unlabelled[0], features=task.points)
        t_out, t_feats = teacher(unlabelled[0], features=task.points)
        recon = 10.0 * torch.nn.functional.l1_loss(fake, t_out)
        distill = task.adapters(s_feats, t_feats)
    logs = task.training_step(dict(labelled, U=unlabelled[0]), 0, task.configure_optimizers())
    assert logs["loss_unlabelled_recon"] == pytest.approx(float(recon), rel=1e-5)
    assert logs["loss_unlabelled_distill"] == pytest.approx(float(distill), rel=1e-5)
    terms = ("recon", "distill", "unlabelled_recon", "unlabelled_distill")
    assert logs["loss_g"] == pytest.approx(sum(logs[f"loss_{k}"] for k in terms), rel=1e-5)

    def trained(with_unlabelled: bool) -> float:
        task = task_for()
        opts = task.configure_optimizers()
        for step in range(24):
            batch = dict(labelled, U=unlabelled[step % 8]) if with_unlabelled else labelled
            task.training_step(batch, step, opts)
        with torch.no_grad():  # an unlabelled input never trained on
            return float(torch.nn.functional.l1_loss(task.student(unlabelled[8]), teacher(unlabelled[8])))

    assert trained(True) < 0.9 * trained(False)  # measured: 0.217 against 0.261


def test_distill_task_with_discriminator_and_munit_style_loss_runs_and_updates_d():
    teacher = tiny("munit").eval()
    space = space_for(teacher)
    supernet = build_supernet(teacher, space)
    from gancompress.methods.gan_compression.distill import build_discriminator
    from gancompress.methods.gan_compression.recipe import DiscriminatorConfig

    disc, note = build_discriminator(DiscriminatorConfig(base_width=4, num_layers=2, conditional=False), 3, 3)
    assert "fresh" in note
    s_ch, t_ch = supernet.feature_channels(), teacher.feature_channels()
    adapters = FeatureAdapters({"content": s_ch["content"]}, {"content": t_ch["content"]})
    loss = LossConfig(recon=10, recon_target="teacher", distill=1, style=1, gan=1, gan_mode="lsgan")
    task = DistillTask(
        supernet,
        teacher,
        disc,
        adapters,
        loss,
        StageConfig(),
        ArchSampler(space, "uniform"),
        conditional_d=False,
    )
    opts = task.configure_optimizers()
    d_before = [p.detach().clone() for p in disc.parameters()]
    logs = task.training_step(_paired_batch(teacher), 0, opts)
    assert {"loss_recon", "loss_distill", "loss_style", "loss_gan_g", "loss_d"} <= set(logs)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))
    assert task.sample(_paired_batch(teacher)).shape == (2, 3, 32, 32 * 4)


def test_student_discriminator_keeps_the_gan_objective_the_teacher_trained_it_with(tmp_path):
    import json

    from gancompress.methods.gan_compression.distill import teacher_gan_mode
    from gancompress.methods.gan_compression.pipeline import match_teacher_gan_mode
    from gancompress.methods.gan_compression.recipe import GanCompressionRecipe, load_recipe
    from gancompress.training.losses import discriminator_loss

    # the failure this guards against: a BCE-trained D's logits lie beyond both hinge margins, so the
    # hinge loss is exactly 0 and D gets no gradient, ever; BCE still trains it
    real = torch.full((1, 1, 4, 4), 6.0, requires_grad=True)
    fake = torch.full((1, 1, 4, 4), -6.0, requires_grad=True)
    hinge = discriminator_loss("hinge", real, fake)
    grads = torch.autograd.grad(hinge, [real, fake])
    assert float(hinge.detach()) == 0.0 and not any(g.any() for g in grads)
    assert float(discriminator_loss("vanilla", real, fake).detach()) > 0

    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    (teacher_dir / "discriminator.safetensors").write_bytes(b"")
    d_path = teacher_dir / "discriminator.safetensors"
    assert teacher_gan_mode(d_path) is None  # nothing recorded
    (teacher_dir / "config.json").write_text(
        json.dumps({"meta": {"recipe": {"loss": {"gan_mode": "vanilla"}}}})
    )
    assert teacher_gan_mode(d_path) == teacher_gan_mode(teacher_dir) == "vanilla"
    (teacher_dir / "discriminator.json").write_text(json.dumps({"name": "patchgan", "gan_mode": "lsgan"}))
    assert teacher_gan_mode(d_path) == "lsgan"  # the discriminator's own record wins
    (teacher_dir / "discriminator.json").write_text(json.dumps({"name": "patchgan"}))

    hinge_recipe = load_recipe("configs/methods/fast_gan_compression/fonts.yaml", ["loss.gan_mode=hinge"])
    assert match_teacher_gan_mode(hinge_recipe) == (hinge_recipe, None)  # fresh D: the recipe's mode
    started = load_recipe(
        "configs/methods/fast_gan_compression/fonts.yaml",
        ["loss.gan_mode=hinge", f"discriminator.init_from={d_path}"],
    )
    matched, note = match_teacher_gan_mode(started)
    assert isinstance(matched, GanCompressionRecipe)
    assert matched.loss.gan_mode == "vanilla" and "hinge" in note and "vanilla" in note
    assert matched.loss.recon == started.loss.recon
    assert match_teacher_gan_mode(matched) == (matched, None)


# -- BatchNorm recalibration -------------------------------------------------------------------------
def test_recalibration_recomputes_batchnorm_statistics_of_the_subnet():
    net = tiny("unet")
    space = space_for(net)
    sub = net.extract_subnet(space.smallest())
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    n = recalibrate_batchnorm(sub, [(x, {})])
    assert n > 0
    bn = sub.down_norm[1]
    with torch.no_grad():
        h = sub.down[0](x, sub.channels()["level1"])
        h = sub.down[1](torch.nn.functional.leaky_relu(h, 0.2), sub.channels()["level2"])
    torch.testing.assert_close(bn.running_mean, h.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1


# -- search ------------------------------------------------------------------------------------------
def _evaluator(tmp_path, supernet, teacher, name="cache.json"):
    g = torch.Generator().manual_seed(2)
    xs = [torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2)]
    with torch.no_grad():
        ys = [teacher(x) for x in xs]
    held = HeldOut(inputs=xs, reals=ys, extras=[{}, {}], slice_id="tiny")
    return SubnetEvaluator(supernet, held, "psnr", cache_path=tmp_path / name)


@pytest.fixture
def search_setup():
    teacher = tiny("resnet").eval()
    space = SearchSpace.parse("resnet", RESNET_GROUPS, "8|4_8_8_8|4_8_8_8|4_8|4")
    supernet = build_supernet(teacher, space, separable=True).eval()
    table = MacsTable(supernet, (32, 32))
    mid = (table(space.largest()) + table(space.smallest())) / 2
    return teacher, space, supernet, Budget("macs", mid, table)


def test_exhaustive_search_respects_the_budget_and_reuses_the_cache(tmp_path, search_setup):
    teacher, space, supernet, budget = search_setup
    ev = _evaluator(tmp_path, supernet, teacher)
    found = exhaustive_search(space, budget, ev)
    feasible = [a for a in space.enumerate() if budget.feasible(a)]
    assert 1 < len(feasible) < space.size
    assert budget.cost(found.arch) <= budget.limit and found.arch in space
    assert ev.evaluations == len(feasible) == found.candidates
    assert found.score == max(ev(a) for a in feasible)
    # a re-run (new evaluator on the same cache file) scores nothing again
    ev2 = _evaluator(tmp_path, supernet, teacher)
    again = exhaustive_search(space, budget, ev2)
    assert again.arch == found.arch and ev2.evaluations == 0
    # a tighter budget reuses the cached scores too
    tighter = Budget("macs", budget.cost(space.smallest()) * 1.05, budget.cost)
    small = exhaustive_search(space, tighter, ev2)
    assert budget.cost(small.arch) <= tighter.limit and ev2.evaluations == 0


def test_evolutionary_search_respects_budget_is_deterministic_and_uses_cache(tmp_path, search_setup):
    teacher, space, supernet, budget = search_setup
    kw = dict(population=8, generations=3, parent_ratio=0.25, mutation_ratio=0.5, mutate_prob=0.4, seed=5)
    ev = _evaluator(tmp_path, supernet, teacher, "a.json")
    found = evolutionary_search(space, budget, ev, **kw)
    assert budget.cost(found.arch) <= budget.limit and found.arch in space
    assert ev.evaluations == found.candidates > 1
    assert len(found.history) == 4
    # the same seed on a fresh cache gives the same search
    ev_b = _evaluator(tmp_path, supernet, teacher, "b.json")
    again = evolutionary_search(space, budget, ev_b, **kw)
    assert again.arch == found.arch and again.history == found.history
    assert ev_b.evaluations == ev.evaluations
    # and on the warm cache nothing is scored again
    ev_c = _evaluator(tmp_path, supernet, teacher, "a.json")
    evolutionary_search(space, budget, ev_c, **kw)
    assert ev_c.evaluations == 0


def test_search_resumes_after_interruption(tmp_path, search_setup):
    teacher, space, supernet, budget = search_setup
    ev = _evaluator(tmp_path, supernet, teacher)
    calls = {"n": 0}
    original = ev.outputs

    def dying(arch):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return original(arch)

    ev.outputs = dying
    with pytest.raises(KeyboardInterrupt):
        exhaustive_search(space, budget, ev)
    assert ev.evaluations == 3
    resumed = _evaluator(tmp_path, supernet, teacher)
    found = exhaustive_search(space, budget, resumed)
    feasible = [a for a in space.enumerate() if budget.feasible(a)]
    assert resumed.evaluations == len(feasible) - 3
    assert found.score == max(resumed(a) for a in feasible)


def test_infeasible_budget_raises_budget_error_naming_the_smallest_macs(tmp_path, search_setup):
    teacher, space, supernet, budget = search_setup
    smallest = budget.cost(space.smallest())
    tiny_budget = Budget("macs", smallest / 2, budget.cost)
    ev = _evaluator(tmp_path, supernet, teacher)
    for run in (
        lambda: exhaustive_search(space, tiny_budget, ev),
        lambda: evolutionary_search(space, tiny_budget, ev, population=4, generations=1),
    ):
        with pytest.raises(BudgetError, match=f"smallest reachable {smallest:,.0f} ") as info:
            run()
        assert str(space.smallest()) in str(info.value)
    assert ev.evaluations == 0


def test_miou_search_metric_against_labels_or_the_segmenter_on_real_images(tmp_path, search_setup):
    teacher, space, supernet, budget = search_setup
    torch.manual_seed(3)
    segmenter = torch.nn.Conv2d(3, 4, 1)  # any module mapping images to class logits
    g = torch.Generator().manual_seed(4)
    xs = [torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2)]
    with torch.no_grad():
        reals = [teacher(x) for x in xs]
    held = HeldOut(inputs=xs, reals=reals, extras=[{}, {}], slice_id="seg")
    with pytest.raises(ConfigError, match="needs a segmenter"):
        SubnetEvaluator(supernet, held, "miou")
    ev = SubnetEvaluator(supernet, held, "miou", segmenter=segmenter, num_classes=4)
    # paired images: the segmenter's classes on the real images are the reference
    assert ev.miou(reals) == pytest.approx(1.0)
    assert 0 <= ev.miou([r.flip(-1) for r in reals]) < 1
    found = exhaustive_search(space, budget, ev)
    assert 0 <= found.score <= 1 and budget.feasible(found.arch)
    # one-hot label maps as inputs (semantic data): the labels are the reference
    labels = [
        torch.nn.functional.one_hot(torch.randint(0, 4, (2, 32, 32), generator=g), 5)
        .permute(0, 3, 1, 2)
        .float()
    ]
    fakes = [torch.nn.functional.one_hot(labels[0][:, :4].argmax(1), 4).permute(0, 3, 1, 2).float() * 10]
    identity = torch.nn.Identity()
    semantic = HeldOut(inputs=labels, reals=[torch.zeros(2, 3, 32, 32)], extras=[{}], slice_id="sem")
    ev_sem = SubnetEvaluator(supernet, semantic, "miou", segmenter=identity, num_classes=4)
    assert ev_sem.miou(fakes) == pytest.approx(1.0)


def test_fid_search_uses_the_extractor_the_recipe_names_and_caches_per_extractor(tmp_path, search_setup):
    from gancompress.metrics import quality

    teacher, space, supernet, budget = search_setup
    g = torch.Generator().manual_seed(5)
    xs = [torch.rand(4, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2)]
    with torch.no_grad():
        reals = [teacher(x) for x in xs]
    held = HeldOut(inputs=xs, reals=reals, extras=[{}, {}], slice_id="fid")
    seen = []

    def metric(fakes, reals, name, **kw):
        seen.append(kw.get("extractor"))
        return quality.feature_metric_for_search(fakes, reals, name, **kw)

    cache = tmp_path / "cache.json"
    arch = space.smallest()
    sat = SubnetEvaluator(
        supernet, held, "fid", feature_metric=metric, cache_path=cache, extractor="segmenter:labels2sat"
    )
    value = sat(arch)
    assert seen == ["segmenter:labels2sat"] and value >= 0
    assert sat(arch) == value and sat.evaluations == 1  # cached
    direct = quality.feature_metric_for_search(
        sat.outputs(arch), reals, "fid", extractor="segmenter:labels2sat"
    )
    assert value == pytest.approx(direct)
    # another extractor is another cache entry, not the satellite score
    other = SubnetEvaluator(
        supernet, held, "fid", feature_metric=metric, cache_path=cache, extractor="domain:fashion"
    )
    assert other.key(arch) != sat.key(arch)
    assert other(arch) != value and other.evaluations == 1 and seen[-1] == "domain:fashion"


# -- a supernet started from the teacher -------------------------------------------------------------
def test_supernet_started_from_the_teacher_computes_the_teacher_and_leads_with_its_important_channels():
    from gancompress.pruning import channel_importance, prune_by_importance

    teacher = tiny("resnet").eval()
    full = "8|6_8|6_8|6_8|6_8|6_8|6_8|6_8|6"  # the teacher's own widths are the largest choice
    space = SearchSpace.parse("resnet", RESNET_GROUPS, full)
    supernet = build_supernet(teacher, space, separable=False, init_from=teacher, order="importance").eval()
    assert all(p.requires_grad for p in supernet.parameters())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # channels reordered consistently: the same function
        torch.testing.assert_close(supernet(x), teacher(x), rtol=1e-4, atol=1e-5)
    # the narrower subnet's channels are the teacher's most important ones, not the first by index
    small = space.smallest()
    with torch.no_grad():
        want = prune_by_importance(teacher, small).eval()(x)
        got = supernet.extract_subnet(small).eval()(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    imp = channel_importance(supernet, "trunk", "l1")
    assert imp[: imp.numel() * 3 // 4].min() >= imp[imp.numel() * 3 // 4 :].max() - 1e-6
    with pytest.raises(ConfigError):
        prune_by_importance(teacher, small, order="random")
