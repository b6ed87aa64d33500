"""Captum probes: the right gradients and targets, pixel-space baselines, batched occlusion equal to
unbatched, one colour scale per image across tasks, and bad config as one line before any work."""

from __future__ import annotations

import pytest
import torch

from retentive.errors import ConfigError
from retentive.models import build_net, cnn_backbone, mlp_backbone
from retentive.probes import PROBES, make_probe, mask_share
from retentive.probes.baselines import pixel_baseline
from retentive.probes.figures import ProbedImage, probe_mosaic
from tests.conftest import needs_mnist


def _input_gradient(net, x, t, target):
    x = x.clone().requires_grad_(True)
    net(x, t).gather(1, target[:, None]).sum().backward()
    return x.grad


def test_saliency_is_the_gradient_at_x_minus_at_the_black_baseline_of_each_sample_head():
    torch.manual_seed(0)
    net = build_net(mlp_backbone, (1, 8, 8), [2, 2, 2], multihead=True).eval()
    x, t = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    target = torch.tensor([1, 0, 1, 1, 0, 0])
    mean, std = 0.2, 0.5  # the model sees (pixel - 0.2) / 0.5: black is -0.4
    probe = make_probe("saliency", pixel_mean=mean, pixel_std=std)
    explanation = probe.explain(net, x, t, target)
    black = torch.full_like(x, -0.4)
    delta = (_input_gradient(net, x, t, target) - _input_gradient(net, black, t, target)) / std
    assert delta.abs().sum() > 0  # a ReLU net's gradient does depend on where it is taken
    assert torch.allclose(explanation.maps, delta, atol=1e-6)
    assert torch.allclose(explanation.overlay, delta * (x * std + mean), atol=1e-6)  # delta ⊙ pixel
    plain = make_probe("saliency", baseline="none", abs=True).attribute(net, x, t)  # |grad| of the prediction
    predicted = net(x, t).argmax(1)
    assert torch.allclose(plain, _input_gradient(net, x, t, predicted).abs(), atol=1e-6)


def test_pixel_space_baselines():
    x = torch.rand(2, 3, 10, 10)
    assert torch.equal(pixel_baseline("black", x, 0.5, 0.25), torch.full_like(x, -2.0))
    assert torch.equal(pixel_baseline("mean", x, 0.5, 0.25), torch.zeros_like(x))
    flat = torch.full_like(x, 0.3)  # a uniform image is its own blur; blurring smooths a noisy one
    assert torch.allclose(pixel_baseline("blur", flat, 0.5, 0.25, blur_sigma=1.0), flat, atol=1e-6)
    assert pixel_baseline("blur", x, 0.5, 0.25, blur_sigma=1.0).std() < 0.5 * x.std()


def test_occlusion_batched_equals_one_perturbation_at_a_time_and_is_the_logit_drop():
    torch.manual_seed(0)
    net = build_net(cnn_backbone, (1, 12, 12), [3], multihead=False).eval()
    x, t, target = torch.rand(3, 1, 12, 12), torch.zeros(3, dtype=torch.long), torch.tensor([0, 2, 1])
    batched = make_probe("occlusion", window=4, stride=4, perturbations_per_eval=64).attribute(net, x, t, target)
    single = make_probe("occlusion", window=4, stride=4, perturbations_per_eval=1).attribute(net, x, t, target)
    assert torch.allclose(batched, single, atol=1e-5)
    occluded = x.clone()
    occluded[:, :, 4:8, 0:4] = 0.0  # black with mean 0 / std 1
    with torch.no_grad():
        drop = net(x, t).gather(1, target[:, None]) - net(occluded, t).gather(1, target[:, None])
    assert torch.allclose(batched[:, 0, 5, 1], drop[:, 0], atol=1e-5)  # every pixel of that window


def test_every_probe_gives_one_map_per_image_on_a_cnn():
    torch.manual_seed(0)
    net = build_net(cnn_backbone, (3, 12, 12), [4], multihead=False).eval()
    x, t = torch.rand(3, 3, 12, 12), torch.zeros(3, dtype=torch.long)
    for name in PROBES:
        maps = make_probe(name).attribute(net, x, t)
        assert maps.shape == (3, 1, 12, 12) and torch.isfinite(maps).all() and maps.abs().sum() > 0, name
    assert (make_probe("gradcam").attribute(net, x, t) >= 0).all()  # GradCAM's ReLU


def test_mask_share_is_the_fraction_of_attribution_inside_the_mask():
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 0, 0], maps[0, 0, 3, 3] = 3.0, -1.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 1
    assert mask_share(maps, mask) == pytest.approx(0.75)
    assert mask_share(maps, torch.ones(1, 3, 4, 4)) == pytest.approx(1.0)


def test_one_colour_scale_per_image_across_task_ends_and_a_note_on_zero_maps():
    """A map that halved from task 0 to task 1 must look half as strong, not equally saturated."""
    strong = torch.zeros(1, 4, 4)
    strong[0, 1, 2] = 2.0
    row = ProbedImage(pixels=torch.rand(1, 4, 4), task=0, label=1, maps={0: strong, 1: strong / 2, 2: strong * 0},
                      predictions={0: 1, 1: 1, 2: 0}, targets={0: 1, 1: 1, 2: 1}, overlay=strong * 0)
    mosaic = probe_mosaic("ig", "logit contribution", 2, "label", [row])
    colour = [mosaic.canvas[mosaic.cell(0, 2.25 + m)[0] + 1, mosaic.cell(0, 2.25 + m)[1] + 2] for m in range(3)]
    assert colour[0] == pytest.approx([1.0, 0.0, 0.0], abs=0.01)  # the row's maximum: full red
    assert colour[1][1] == pytest.approx(0.5, abs=0.02)  # half of it: half-way to white
    assert colour[2] == pytest.approx([1.0, 1.0, 1.0], abs=0.01)
    notes = [text for _, _, text, _ in mosaic.texts]
    assert notes.count("all zero") == 2 and "±2" in notes  # the zero map and the zero overlay; bar range
    assert [text for *_, text, style in mosaic.texts if style.get("color") == "red"] == ["pred 0"]


def test_unknown_probe_bad_options_and_conv_probes_on_an_mlp_fail_before_any_work(run_config, tmp_path):
    with pytest.raises(ConfigError, match="probes.methods: unknown method 'lime'"):
        make_probe("lime")
    with pytest.raises(ConfigError, match=r"probes.captum.options.occlusion.windw: is not an option \(choose from"):
        make_probe("occlusion", windw=3)
    with pytest.raises(ConfigError, match="probes.captum.options.integrated_gradients.baseline: 'grey' is not a baseline"):
        make_probe("integrated_gradients", baseline="grey")
    for probes, needs in (("gradcam", "gradcam"), ("inspection", "inspection")):
        with pytest.raises(ConfigError, match=rf"^probes: {needs}.* needs a model with conv \(use model=cnn\)$"):
            run_config("dataset=split_digits", f"probes={probes}", "model=mlp")
    with pytest.raises(ConfigError, match="probes.captum.target: 'maybe' is not a target"):
        run_config("dataset=split_digits", "probes=default", "probes.captum.target=maybe")
    with pytest.raises(ConfigError, match="probes.captum.options.gradcam.layer: the model has no conv layer 5"):
        run_config("dataset=split_digits", "probes=gradcam", "model=cnn", "probes.captum.options.gradcam.layer=5")
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "results.json").exists()


@needs_mnist
def test_per_channel_standardisation_black_is_pixel_zero_and_probes_stay_finite():
    import os

    from retentive.data import ColorMNIST
    from retentive.probes.baselines import normalisation_of, to_pixels

    stream = ColorMNIST(data_dir=os.environ["DATA_DIR"], train_samples_per_task=300, test_samples_per_task=50,
                        standardize=True)
    test = stream.test(0)
    mean, std = normalisation_of(test)
    assert mean.shape == std.shape == (3, 1, 1) and len(set(std.flatten().tolist())) == 3  # one per channel
    scalar = type("Scalar", (), {"mean": 0.1307, "std": 0.3081})()  # MNIST-style one number per dataset
    assert normalisation_of(scalar) == pytest.approx((0.1307, 0.3081))
    x = test.batch(list(range(4))).x
    black = pixel_baseline("black", x, mean, std)
    assert torch.allclose(to_pixels(black, mean, std), torch.zeros_like(x), atol=1e-6)  # every channel at 0
    assert torch.allclose(to_pixels(x, mean, std), test.images[:4].float() / 255, atol=1e-5)  # round trip
    torch.manual_seed(0)
    net = build_net(cnn_backbone, stream.input_shape, [10], multihead=False).eval()
    t = torch.zeros(4, dtype=torch.long)
    for name in ("saliency", "integrated_gradients"):
        probe = make_probe(name, baseline="black")
        probe.pixel_mean, probe.pixel_std = mean, std
        maps = probe.attribute(net, x, t, test.labels[:4])
        assert maps.shape == (4, 1, 28, 28) and torch.isfinite(maps).all() and maps.abs().sum() > 0, name
