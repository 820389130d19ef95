"""The network's appearance input: the references warped into the target pose, through a zero-initialised path."""

import copy

import numpy as np
import pytest
import torch

from engine.models.configs import build_components
from engine.models.pose_guider import PoseGuider
from engine.pipeline import FreeViewPipeline
from tests.test_pipeline import stick_figure

SIZE = 32


def perturb(module, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.fixture(scope="module")
def components():
    parts = build_components("tiny", seed=0)
    perturb(parts["pose_guider"].conv_out)  # a guider whose pose path is trained
    return parts


def test_a_fresh_appearance_input_changes_nothing(components):
    guider = components["pose_guider"]
    wider = PoseGuider.with_appearance(guider, 5)
    poses = torch.rand(1, 3, 2, SIZE, SIZE)
    appearance = torch.randn(1, 5, 2, *guider(poses).shape[-2:])
    assert wider.config.appearance_channels == 5 and guider.config.appearance_channels == 0
    assert torch.equal(wider(poses, appearance), guider(poses))
    assert torch.equal(wider(poses, None), guider(poses))
    perturb(wider.appearance_in)  # once trained, the appearance counts
    assert not torch.allclose(wider(poses, appearance), guider(poses))
    assert set(wider.state_dict()) - set(guider.state_dict()) == {"appearance_in.weight", "appearance_in.bias"}


def test_appearance_inputs_are_checked(components):
    guider = components["pose_guider"]
    poses = torch.rand(1, 3, 1, SIZE, SIZE)
    with pytest.raises(ValueError, match="takes no appearance input"):
        guider(poses, torch.zeros(1, 5, 1, 8, 8))
    wider = PoseGuider.with_appearance(guider, 5)
    with pytest.raises(ValueError, match="does not fit this pose guider"):
        wider(poses, torch.zeros(1, 4, 1, 8, 8))
    with pytest.raises(ValueError, match="already takes 5"):
        PoseGuider.with_appearance(wider, 3)
    assert PoseGuider.with_appearance(wider, 5) is wider


def run(pipe, **kw):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 40, 3), dtype=np.uint8), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)]
    motion = np.stack([stick_figure(0.05 * np.sin(i)) for i in range(4)])
    return pipe(images, [stick_figure(), stick_figure(0.02)], motion, height=SIZE, width=SIZE, num_inference_steps=2,
                generator=torch.Generator().manual_seed(0), **kw)


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_a_model_given_the_warp_samples_exactly_as_before_until_trained(components, guidance):
    plain = FreeViewPipeline(**components)
    plain.set_progress_bar_config(disable=True)
    parts = dict(components, pose_guider=PoseGuider.with_appearance(components["pose_guider"], 5))
    warped = FreeViewPipeline(**parts)
    warped.set_progress_bar_config(disable=True)
    before, after = run(plain, guidance_scale=guidance), run(warped, guidance_scale=guidance)
    assert before.warped is None and after.warped.shape == (4, SIZE, SIZE, 3)
    np.testing.assert_array_equal(before.frames, after.frames)
    trained = copy.deepcopy(parts["pose_guider"])
    perturb(trained.appearance_in)
    changed = FreeViewPipeline(**dict(parts, pose_guider=trained))
    changed.set_progress_bar_config(disable=True)
    assert not np.array_equal(run(changed, guidance_scale=guidance).frames, before.frames)


def test_the_unconditional_branch_sees_no_appearance(components):
    parts = dict(components, pose_guider=PoseGuider.with_appearance(components["pose_guider"], 5))
    perturb(parts["pose_guider"].appearance_in)
    pipe = FreeViewPipeline(**parts)
    seen = []
    original = pipe.network.encode_poses
    pipe.network.encode_poses = lambda poses, appearance=None: (seen.append(appearance is not None), original(poses, appearance))[1]
    run(pipe, guidance_scale=2.0)
    assert seen == [True, False]  # the conditional features with it, the unconditional ones without


@pytest.mark.slow
def test_training_with_the_warp_learns_its_input_and_exports_it(tmp_path):
    from train.config import make_config
    from train.loop import load_components, train
    from train.synth import MakeSettings, make_dataset

    data = tmp_path / "synth"
    make_dataset(data, MakeSettings(identities=1, eval_identities=0, size=128, clips_per_identity=2, frames=3, supersample=1))
    config = make_config("tiny-synthetic", architecture="tiny", data=str(data), output_dir=str(tmp_path / "run"), resolution=32,
                         batch_size=2, max_refs=2, steps=3, warmup_steps=0, learning_rate=1e-3, reference_dropout=0.0,
                         checkpoint_every=3, appearance="warp")
    assert train(config)["step"] == 3
    model = FreeViewPipeline.from_pretrained(tmp_path / "run" / "model")
    assert model.pose_guider.config.appearance_channels == 5
    assert model.pose_guider.appearance_in.weight.abs().sum() > 0  # it learned from the warp
    keep = make_config("tiny-synthetic", architecture="tiny", data=str(data), output_dir=str(tmp_path / "again"), resolution=32,
                       init_from=str(tmp_path / "run" / "model"), appearance="keep")
    assert load_components(keep)["pose_guider"].config.appearance_channels == 5  # "keep" keeps what the model has


# -- the appearance refiner (engine/models/refiner.py): pixel-space correction with the warp composite ----------


def test_a_fresh_refiner_renders_exactly_the_frames_of_a_model_without_one(components):
    from engine.models.refiner import AppearanceRefiner

    plain = FreeViewPipeline(**components)
    plain.set_progress_bar_config(disable=True)
    refined = FreeViewPipeline(**components, refiner=AppearanceRefiner())
    refined.set_progress_bar_config(disable=True)
    before, after = run(plain), run(refined)
    assert before.warped is None and after.warped.shape == (4, SIZE, SIZE, 3) and after.coverage.shape == (4, SIZE, SIZE)
    np.testing.assert_array_equal(before.frames, after.frames)
    trained = copy.deepcopy(refined.refiner)
    perturb(trained.unet.conv_out)
    changed = FreeViewPipeline(**components, refiner=trained)
    changed.set_progress_bar_config(disable=True)
    assert not np.array_equal(run(changed).frames, before.frames)


def test_the_refiners_gate_takes_the_warp_where_it_covers_and_keeps_the_frame_elsewhere():
    from engine.models.refiner import AppearanceRefiner

    refiner = AppearanceRefiner()
    with torch.no_grad():
        refiner.unet.conv_out.bias[0] = 1.0  # gate 1, no residual
    frames, warped = torch.full((1, 3, 16, 16), -0.5), torch.full((1, 3, 16, 16), 0.75)
    coverage = torch.zeros(1, 1, 16, 16)
    coverage[..., :8] = 1.0
    out = refiner(frames, warped, coverage, torch.zeros(1, 3, 16, 16))
    assert torch.allclose(out[..., :8], warped[..., :8]) and torch.allclose(out[..., 8:], frames[..., 8:])
    with pytest.raises(ValueError, match="refiner inputs do not fit"):
        refiner(frames, warped[..., :8], coverage, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="multiples of 8"):
        refiner(frames[..., :12], warped[..., :12], coverage[..., :12], torch.zeros(1, 3, 16, 12))


def test_a_model_saved_with_a_refiner_loads_with_it_and_one_without_loads_without(components, tmp_path):
    from engine.model import load_pipeline
    from engine.models.refiner import AppearanceRefiner

    refiner = AppearanceRefiner()
    perturb(refiner.unet.conv_out)
    FreeViewPipeline(**components, refiner=refiner).save_pretrained(tmp_path / "with", safe_serialization=True)
    FreeViewPipeline(**components).save_pretrained(tmp_path / "without", safe_serialization=True)
    loaded = load_pipeline(tmp_path / "with", device="cpu")
    assert torch.equal(loaded.refiner.unet.conv_out.weight, refiner.unet.conv_out.weight)
    assert load_pipeline(tmp_path / "without", device="cpu").refiner is None
