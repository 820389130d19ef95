"""Fidelity metrics, the evaluation baselines and the eval harness (with a stub pipeline)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from engine import metrics
from train.evaluate import (
    APPEARANCE_METRICS, DEFAULT_VARIANTS, Variant, align_reference, build_cases, evaluate, markdown_table,
    mean_frame_baseline, nearest_pose_baseline, pose_distance, swap_cases,
)
from train.synth import make_dataset
from train.synth.dataset import MakeSettings


def _image(seed=0, shape=(48, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def test_identical_images():
    a = _image()
    assert metrics.l1(a, a) == 0.0
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.psnr(a, a) == metrics.PSNR_CAP_DB
    assert metrics.psnr(a, a, cap_db=None) == np.inf


def test_known_error_levels():
    grey = np.full((64, 64, 3), 128, np.uint8)
    shifted = grey + 5
    assert metrics.l1(shifted, grey) == pytest.approx(5.0)
    assert metrics.psnr(shifted, grey) == pytest.approx(10 * np.log10(255**2 / 25), abs=1e-6)
    noise = np.random.default_rng(1).normal(0, 8.0, grey.shape)
    noisy = np.clip(np.round(128 + noise), 0, 255).astype(np.uint8)
    expected = 10 * np.log10(255**2 / np.mean((noisy.astype(float) - 128) ** 2))
    assert metrics.psnr(noisy, grey) == pytest.approx(expected, abs=1e-6)
    assert metrics.psnr(noisy, grey) == pytest.approx(20 * np.log10(255 / 8.0), abs=0.2)
    assert metrics.ssim(noisy, grey) < 0.9


def test_batches_and_bad_shapes():
    a, b = _image(0, (3, 32, 32, 3)), _image(1, (3, 32, 32, 3))
    batch = metrics.basic_metrics(a, b)
    singles = [metrics.basic_metrics(x, y) for x, y in zip(a, b)]
    for key in metrics.BASIC_METRICS:
        assert batch[key] == pytest.approx(np.mean([s[key] for s in singles]))
    with pytest.raises(ValueError):
        metrics.l1(a, b[:2])


def test_learned_metrics_are_skipped_with_a_reason():
    skipped = metrics.unavailable_metrics()
    for name, reason in skipped.items():
        assert name in ("LPIPS", "FVD") and len(reason) > 20
    if "LPIPS" in skipped:
        with pytest.raises(RuntimeError, match="LPIPS"):
            metrics.lpips(_image(), _image())
    if "FVD" in skipped:
        with pytest.raises(RuntimeError, match="FVD"):
            metrics.fvd(_image(0, (2, 4, 16, 16, 3)), _image(1, (2, 4, 16, 16, 3)))


# --------------------------------------------------------------------------- appearance


def _render(character, shot, frames=4, seed=3, size=128):
    """Frames and keypoints of ``character`` filmed in ``shot`` (the synthetic world's own renderer)."""
    from train.synth import Backdrop, Renderer, make_camera, make_motion

    motion = make_motion(character, frames, seed)
    camera = make_camera(character, motion, shot, size, seed)
    renderer = Renderer(character, size)
    backdrop = Backdrop("plain", (196, 204, 214), (120, 126, 132))
    rendered = [renderer.render(motion, camera, i, backdrop)[:2] for i in range(frames)]
    return np.stack([r[0] for r in rendered]), np.stack([r[1] for r in rendered])


def _lab(rgb):
    return metrics.to_lab(np.array(rgb, np.uint8)[None, None])[0, 0]


@pytest.mark.parametrize("seed", [11, 12])
def test_part_colours_read_a_synthetic_characters_clothes(seed):
    """The colour reader on rendered people whose colours are known (train/synth/character.py)."""
    from dataclasses import replace

    from train.synth import make_character

    # plain clothes (a pattern has two colours), hair on the head, no beard or glasses over the skin
    person = replace(make_character(seed), pattern="plain", logo="none", hair_style="short", beard=False, glasses="none")
    readings = [metrics.part_colour_track(*_render(person, shot)) for shot in ("close-up", "medium", "wide")]
    colours = metrics.summary_colours(np.concatenate(readings))
    expected = {"torso": person.shirt_colour, "upper arms": person.shirt_colour, "thighs": person.lower_colour,
                "hair": person.hair_colour, "skin": person.skin, "shoes": person.shoe_colour}
    for i, part in enumerate(metrics.PARTS):
        assert np.isfinite(colours[i]).all(), f"{part} never read"
        assert metrics.delta_e(colours[i], _lab(expected[part])) < 5, part
    # each shot reads only what it shows: no shoes in a close-up, no hair to speak of in a wide shot's few pixels
    close_up = metrics.summary_colours(readings[0])
    assert np.isnan(close_up[metrics.PARTS.index("shoes")]).all() and np.isnan(close_up[metrics.PARTS.index("thighs")]).all()


def test_part_regions_use_only_seen_keypoints_inside_the_frame():
    from train.synth import make_character

    frames, keypoints = _render(make_character(5), "wide", frames=1)
    kp = keypoints[0]
    regions = metrics.part_regions(kp, 128, 128)
    shoes = metrics.PARTS.index("shoes")
    assert regions["shoes"].sum() >= metrics.MIN_PART_PIXELS
    hidden = kp.copy()
    hidden[[10, 13], 2] = 0  # ankles not seen: no shoes
    assert not metrics.part_regions(hidden, 128, 128)["shoes"].any()
    assert np.isnan(metrics.part_colours(frames[0], hidden)[shoes]).all()
    outside = kp.copy()
    outside[[10, 13], 1] = 1.2  # ankles below the frame: no shoes either, and no error
    assert not metrics.part_regions(outside, 128, 128)["shoes"].any()
    nobody = np.zeros((128, 3), np.float32)
    assert np.isnan(metrics.part_colours(frames[0], nobody)).all()
    with pytest.raises(ValueError, match="keypoints"):
        metrics.part_regions(kp[:18], 128, 128)


def test_dominant_colour_is_the_largest_group_of_alike_pixels():
    red, blue, yellow = _lab((200, 30, 30)), _lab((30, 30, 200)), _lab((240, 220, 40))
    jitter = np.random.default_rng(0).normal(0, 1.0, (40, 3))  # anti-aliasing and shading: the ground is not one value
    pixels = np.concatenate([red + jitter, np.repeat(blue[None], 35, 0), np.repeat(yellow[None], 25, 0)])
    assert metrics.delta_e(metrics.dominant_colour(pixels), red) < 1.5  # 40% red beats 35% blue and 25% yellow
    assert metrics.delta_e(metrics.dominant_colour(pixels[40:]), blue) < 1e-6


def test_delta_e():
    black, white = _lab((0, 0, 0)), _lab((255, 255, 255))
    assert metrics.delta_e(white, white) == pytest.approx(0)
    assert metrics.delta_e(black, white) == pytest.approx(100, abs=0.5)
    assert np.isnan(metrics.delta_e(np.full(3, np.nan), white))


def test_identity_swap_scores():
    a = np.stack([_lab(c) for c in [(200, 30, 30), (30, 30, 200), (40, 160, 60), (20, 20, 20), (230, 190, 160), (250, 250, 250)]])
    b = a.copy()
    b[:3] = [_lab((30, 150, 150)), _lab((240, 200, 40)), _lab((110, 60, 40))]  # the last three parts alike in A and B
    like_a = metrics.identity_swap_scores(a, a, b)
    assert list(like_a["closer_to_donor"][:3]) == [1, 1, 1] and np.isnan(like_a["closer_to_donor"][3:]).all()
    assert like_a["delta_e_to_donor"] == pytest.approx(np.zeros(6), abs=1e-6)
    like_b = metrics.identity_swap_scores(b, a, b)
    assert list(like_b["closer_to_donor"][:3]) == [0, 0, 0] and (like_b["delta_e_to_donor"][:3] > 10).all()
    unseen = b.copy()
    unseen[0] = np.nan
    assert np.isnan(metrics.identity_swap_scores(unseen, a, b)["closer_to_donor"][0])


def test_sharpness_ratios():
    import cv2

    sharp = _image(0, (4, 64, 64, 3))
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in sharp])
    same = metrics.sharpness_ratios(sharp, sharp)
    assert same == {"laplacian": pytest.approx(1.0), "high_frequency": pytest.approx(1.0)}
    soft = metrics.sharpness_ratios(blurred, sharp)
    assert soft["laplacian"] < 0.2 and soft["high_frequency"] < 0.2
    assert metrics.sharpness_ratios(sharp, blurred)["laplacian"] > 5
    flat = np.full((2, 32, 32, 3), 90, np.uint8)
    assert np.isnan(metrics.sharpness_ratios(flat, flat)["laplacian"])


def test_flicker_leaves_out_cuts():
    still = np.full((5, 16, 16, 3), 100, np.uint8)
    still[3:] = 200  # a cut at frame 3: everything changes, but that is the edit, not flicker
    cut = np.array([False, False, False, True, False])
    assert metrics.frame_difference(still, cut) == 0
    assert metrics.frame_difference(still) == pytest.approx(100 / 4)
    moving = np.stack([np.full((16, 16, 3), 100 + 2 * i, np.uint8) for i in range(5)])  # 2 levels per frame
    shimmer = moving.copy()
    shimmer[1::2] += 3  # +3 on every other frame: steps of 5, 1, 5, 1 instead of 2
    assert metrics.flicker_ratio(moving, moving, cut) == pytest.approx(1.0)
    assert metrics.flicker_ratio(shimmer, moving) == pytest.approx(3 / 2)
    assert metrics.flicker_ratio(shimmer, moving, cut) == pytest.approx((5 + 1 + 1) / 3 / 2)  # the 2 -> 3 step left out
    assert np.isnan(metrics.frame_difference(still[:1]))
    with pytest.raises(ValueError, match="one flag per frame"):
        metrics.frame_difference(still, cut[:2])


# --------------------------------------------------------------------------- baselines


def _pose(points):
    kp = np.zeros((128, 3), np.float32)
    kp[: len(points), :2] = points
    kp[: len(points), 2] = 1
    return kp


def test_align_reference_undoes_a_zoom():
    size = 64
    image = np.zeros((size, size, 3), np.uint8)
    image[16:32, 16:32] = 255  # a square whose corners are the keypoints
    ref = _pose(np.array([[16, 16], [32, 16], [32, 32], [16, 32]]) / size)
    target = _pose(np.array([[8, 8], [40, 8], [40, 40], [8, 40]]) / size)  # zoomed 2x about (-8, -8)
    aligned = align_reference(image, ref, target)
    assert aligned[10:38, 10:38].min() == 255 and aligned[44:, 44:].max() == 0


def test_nearest_pose_prefers_the_matching_pose():
    arms_up = _pose(np.array([[0.5, 0.2], [0.5, 0.3], [0.4, 0.3], [0.35, 0.15], [0.3, 0.05], [0.6, 0.3], [0.65, 0.15], [0.7, 0.05]]))
    arms_down = _pose(np.array([[0.5, 0.2], [0.5, 0.3], [0.4, 0.3], [0.38, 0.45], [0.37, 0.6], [0.6, 0.3], [0.62, 0.45], [0.63, 0.6]]))
    target = arms_up.copy()
    target[:8, :2] = target[:8, :2] * 0.5 + 0.1  # same pose, smaller and moved
    assert pose_distance(arms_up, target) + 0.2 < pose_distance(arms_down, target)
    images = [np.full((32, 32, 3), 10, np.uint8), np.full((32, 32, 3), 200, np.uint8)]
    out = nearest_pose_baseline([images[1], images[0]], [arms_down, arms_up], target[None])
    assert out.shape == (1, 32, 32, 3) and out.max() == 10
    mean = mean_frame_baseline(images, 3)
    assert mean.shape == (3, 32, 32, 3) and np.all(mean == 105)


# --------------------------------------------------------------------------- harness


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    make_dataset(root, MakeSettings(identities=1, eval_identities=2, size=128, seed=2, clips_per_identity=3, frames=4))
    return root


class StubPipeline:
    """Same call interface as FreeViewPipeline; returns the mean of its references."""

    def __init__(self):
        self.calls = []

    def __call__(self, reference_images, reference_poses, target_poses, height, width, num_inference_steps,
                 guidance_scale, generator, top_k=None, disable_pcm=False, output_type="np", return_correlation=False):
        self.calls.append(dict(refs=len(reference_images), top_k=top_k, disable_pcm=disable_pcm, steps=num_inference_steps,
                               correlation=return_correlation))
        assert len(reference_poses) == len(reference_images) and target_poses.shape[1:] == (128, 3)
        frames = mean_frame_baseline(reference_images, len(target_poses))
        assert frames.shape[1:3] == (height, width)
        # Correlation maps where the last reference is the only one that matters.
        correlation = np.zeros((len(target_poses), len(reference_images), 4, 4), np.float32)
        correlation[:, -1] = 0.5
        return SimpleNamespace(frames=frames, correlation=correlation if return_correlation else None)


def test_harness_runs_variants_and_baselines(eval_data):
    cases = build_cases(eval_data, num_cases=2, num_frames=3)
    assert all(c.identity.startswith("eval") for c in cases)
    assert cases[0].identity != cases[1].identity  # the first cases already span the held-out people
    for case in cases:
        assert all(clip != case.clip for _, _, clip in case.pool.values())
    stub = StubPipeline()
    report = evaluate(cases, [1, 2], stub, DEFAULT_VARIANTS, steps=2)
    names = [(r["name"], r["refs"]) for r in report["rows"]]
    assert ("nearest-pose reference", 1) in names and ("mean frame", 2) in names
    assert ("R=2 PCM off", 2) in names and ("R=2 all tokens", 2) in names and ("R=1 wide", 1) in names
    assert all(("R=4", 4) != n for n in names)
    rows = {(r["name"], r["refs"]): r for r in report["rows"]}
    for key in ("L1", "PSNR", "SSIM"):  # the stub is the mean-frame baseline
        assert rows[("R=2 close-up+wide", 2)][key] == pytest.approx(rows[("mean frame", 2)][key])
    variants = [v for v in DEFAULT_VARIANTS if v.refs in (1, 2)]
    # each variant: one untimed warm-up, then every case and its identity-swap twin
    assert len(stub.calls) == len(variants) * (2 * len(cases) + 1)
    for key in APPEARANCE_METRICS:  # the stub is the mean frame on appearance too, identity swap included
        assert rows[("R=2 close-up+wide", 2)][key] == pytest.approx(rows[("mean frame", 2)][key], nan_ok=True)
    options = {(c["top_k"], c["disable_pcm"]) for c in stub.calls}
    assert ("all", False) in options and (None, True) in options and (None, False) in options
    assert report["skipped"] == metrics.unavailable_metrics()
    assert "| R=2 PCM off | 2 |" in markdown_table(report)
    assert report["target_shots"] == [c.shot for c in cases] and "PSNR by the target's shot" in markdown_table(report)
    pairs = {(tuple(c["first"]), tuple(c["second"])): c for c in report["comparisons"]}
    same = pairs[(("R=2 close-up+wide", 2), ("mean frame", 2))]  # the stub *is* the mean frame: no difference
    assert same["L1"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    assert (("R=4", 4), ("R=4 all tokens", 4)) not in pairs  # R=4 was not run
    assert "| R=2 close-up+wide | mean frame (R=2) | +0.00 [+0.00, +0.00]" in markdown_table(report)
    # What the selection keeps: asked for only where the PCM chooses between references.
    asked = {(c["refs"], c["disable_pcm"], c["top_k"]) for c in stub.calls if c["correlation"]}
    assert asked == {(2, False, None)}
    assert "selection" not in rows[("R=2 PCM off", 2)] and "selection" not in rows[("R=1 wide", 1)]
    kept = rows[("R=2 close-up+wide", 2)]["selection"]
    assert kept["reference_shots"] == ["close-up", "wide"] and len(kept["share"]) == len(cases)
    assert kept["share"][0] == [0.0, 1.0] and kept["mean_correlation"][0] == [0.0, 0.5]  # one reference's worth: all wide
    assert "selection" not in rows[("R=2 all tokens", 2)]  # every token kept: nothing chosen
    same_shot = sum(c.shot == cases[0].shot for c in cases)
    assert (f"| R=2 close-up+wide | {cases[0].shot} ({same_shot}) | close-up 0% (+0.000), wide 100% (+0.500) |"
            in markdown_table(report))
    json.dumps(report, allow_nan=False)
    # The model's recommended top-K goes to every variant without its own; at R=2, two references' worth keeps
    # every token, so there is no choice to report.
    stub.calls.clear()
    report = evaluate(cases, [2], stub, DEFAULT_VARIANTS, steps=2, top_k=2.0)
    assert {c["top_k"] for c in stub.calls} == {2.0, "all"}
    assert not any(c["correlation"] for c in stub.calls) and not any("selection" in r for r in report["rows"])


def test_selection_summary_counts_the_kept_cells_of_each_reference():
    from train.evaluate import selection_summary

    correlation = np.zeros((2, 3, 2, 2), np.float32)  # 2 frames, 3 references, 4 cells each
    correlation[:, 0, 0] = 1.0            # reference 0: its top row is the best match
    correlation[:, 1] = 0.5               # reference 1: everywhere good
    correlation[:, 2] = -1.0              # reference 2: never
    summary = selection_summary(correlation, None)  # one reference's worth: 4 of 12 cells
    assert summary["share"] == pytest.approx([0.5, 0.5, 0.0])
    assert summary["mean_correlation"] == pytest.approx([0.5, 0.5, -1.0])
    # 10 cells: all of references 0 and 1, then the two best left, both of reference 2
    assert selection_summary(correlation, 2.5)["share"] == pytest.approx([0.4, 0.4, 0.2])
    assert selection_summary(correlation, "all")["share"] == pytest.approx([1 / 3] * 3)


def test_markdown_splits_psnr_by_the_targets_shot():
    row = {"name": "R=1 wide", "refs": 1, "L1": 1.0, "PSNR": 70 / 3, "SSIM": 0.5,
           "per_case": {"L1": [1, 1, 1], "PSNR": [10.0, 20.0, 40.0], "SSIM": [0.5] * 3}}
    report = {"rows": [row], "cases": 3, "target_shots": ["wide", "close-up", "wide"], "frames": 2, "size": 64,
              "steps": 1, "guidance": 1.0}
    table = markdown_table(report)
    assert "| name | refs | close-up (1) | wide (2) |" in table  # no medium target: no medium column
    assert "| R=1 wide | 1 | 20.00 | 25.00 |" in table


def test_paired_difference_interval():
    from train.evaluate import paired_difference

    shifted = paired_difference([3.0, 5.0, 7.0], [1.0, 3.0, 5.0])
    assert shifted == {"mean": 2.0, "low": 2.0, "high": 2.0}
    rng = np.random.default_rng(0)
    b = rng.normal(20, 5, 40)
    noisy = paired_difference(b + 1 + rng.normal(0, 1, 40), b)
    assert noisy["low"] < noisy["mean"] < noisy["high"] and 0 < noisy["low"] and noisy["high"] < 2


def test_paired_difference_over_people_resamples_whole_people():
    from train.evaluate import paired_difference

    # two people, ten cases each: one gains 1 everywhere, the other loses 1 everywhere
    d = np.array([1.0] * 10 + [-1.0] * 10)
    people = ["a"] * 10 + ["b"] * 10
    by_case = paired_difference(d, np.zeros(20))
    by_person = paired_difference(d, np.zeros(20), groups=people)
    assert by_case["mean"] == by_person["mean"] == 0.0
    assert by_case["high"] < 0.6  # twenty independent cases would pin it near zero...
    assert by_person["low"] == -1.0 and by_person["high"] == 1.0  # ...but it is two people, who disagree
    with pytest.raises(ValueError, match="3 group labels for 20 cases"):
        paired_difference(d, np.zeros(20), groups=["a", "b", "c"])


def test_variants_are_data():
    v = Variant.from_dict({"name": "R=3 mixed", "shots": ["wide", "any", "close-up"], "options": {"top_k": "all"}})
    assert v.refs == 3
    with pytest.raises(ValueError, match="portrait"):
        Variant("bad", ("portrait",))
    with pytest.raises(ValueError, match="guidance"):
        Variant.from_dict({"name": "bad", "shots": ["wide"], "options": {"guidance": 3}})


def test_eval_command_writes_json_and_markdown(eval_data, tmp_path, capsys):
    from engine.cli import main

    out, md = tmp_path / "eval.json", tmp_path / "eval.md"
    assert main(["eval", "--data", str(eval_data), "--refs", "1,2", "--json", str(out), "--markdown", str(md),
                 "--cases", "1", "--frames", "2", "--baselines-only"]) == 0
    report = json.loads(out.read_text())
    assert {"name", "refs", "L1", "PSNR", "SSIM"} <= set(report["rows"][0])
    assert "nearest-pose reference" in md.read_text()
    assert main(["eval", "--data", str(eval_data), "--refs", "0", "--json", str(out), "--baselines-only"]) == 2
    assert main(["eval", "--data", str(eval_data), "--refs", "3", "--json", str(out), "--baselines-only"]) == 2


class OraclePipeline:
    """Same call interface as FreeViewPipeline; returns the ground truth of the person whose motion it is given,
    whatever the references (so in an identity swap it draws the driving person, not the references' owner)."""

    def __init__(self, cases):
        self.truth = {case.keypoints.tobytes(): case.frames for case in cases}

    def __call__(self, reference_images, reference_poses, target_poses, height, width, **_):
        return SimpleNamespace(frames=self.truth[np.asarray(target_poses).tobytes()], correlation=None)


def test_harness_appearance_and_identity_swap_with_an_oracle(eval_data):
    cases = build_cases(eval_data, num_cases=4, num_frames=4)
    twins = swap_cases(cases)
    assert [t.donor for t in twins] == [cases[1].identity, cases[0].identity] * 2
    assert all(t.identity == c.identity and t.donor != c.identity for t, c in zip(twins, cases))
    assert swap_cases(cases[::2]) == []  # one person only: nobody to swap with
    wide_only = (Variant("R=1 wide", ("wide",)),)
    report = evaluate(cases, [1], OraclePipeline(cases), wide_only, steps=1)
    row = next(r for r in report["rows"] if r["name"] == "R=1 wide")
    assert row["L1"] == 0 and row["part_dE"] == pytest.approx(0, abs=1e-9)
    assert row["laplacian_ratio"] == pytest.approx(1) and row["hf_energy_ratio"] == pytest.approx(1)
    assert row["flicker_ratio"] == pytest.approx(1)
    # it drew the driving person every time: never nearer the references' owner, and far from their colours
    assert row["swap_closer_to_A"] == 0 and row["swap_dE_to_A"] > 10
    assert set(row["by_part"]["swap_closer_to_A"]) == set(metrics.PARTS)
    report_json = json.dumps(report, allow_nan=False)  # unseen parts are null, not NaN
    assert '"swap_closer_to_A"' in report_json
    table = markdown_table(report)
    assert "swap: parts → A" in table and "| R=1 wide | 1 | 0.00 |" in table.split("Identity swap by part")[1]
    # single-person data: the swap is reported as skipped, not as a figure
    alone = evaluate(cases[::2], [1], OraclePipeline(cases), wide_only, steps=1)
    assert "identity swap" in alone["skipped"] and all(r["swap_closer_to_A"] is None for r in alone["rows"])


def test_warp_composite_row(eval_data, monkeypatch):
    import sys
    from types import ModuleType

    cases = build_cases(eval_data, num_cases=2, num_frames=2)
    seen = []

    def compose_references(ref_images, ref_keypoints, target_keypoints, height, width):
        seen.append((len(ref_images), len(ref_keypoints), target_keypoints.shape, height, width))
        return SimpleNamespace(image=ref_images[-1].copy(), coverage=np.ones((height, width), np.float32))

    stub = ModuleType("engine.warps")
    stub.compose_references = compose_references
    monkeypatch.setitem(sys.modules, "engine.warps", stub)
    report = evaluate(cases, [2], None, DEFAULT_VARIANTS)
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"nearest-pose reference", "mean frame", "warp composite"}
    assert seen[0] == (2, 2, (128, 3), 128, 128) and len(seen) == 2 * 2 * 2  # cases x frames, and their swap twins
    assert rows["warp composite"]["L1"] == pytest.approx(
        np.mean([metrics.l1(np.repeat(c.pool["wide"][0][None], 2, 0), c.frames) for c in cases]))
    assert "warp composite" not in report["skipped"]
    monkeypatch.setitem(sys.modules, "engine.warps", None)  # not installed: the row is left out, with the reason
    report = evaluate(cases, [2], None, DEFAULT_VARIANTS)
    assert "warp composite" not in {r["name"] for r in report["rows"]}
    assert "engine.warps" in report["skipped"]["warp composite"] and "- warp composite skipped" in markdown_table(report)


def test_autoencoder_round_trip_row_is_the_latent_ceiling(eval_data):
    """The ceiling row scores the VAE's round trip of the ground truth: an exact round trip scores as the truth, a
    blurring one loses sharpness, and it has no identity swap (it shows the ground truth's own person)."""
    import cv2
    import torch
    from diffusers import AutoencoderKL

    from train.evaluate import CEILING, autoencoder_round_trip

    cases = build_cases(eval_data, num_cases=2, num_frames=2)
    wide_only = (Variant("R=1 wide", ("wide",)),)
    exact = evaluate(cases, [1], None, wide_only, steps=1, reconstruct=lambda frames: frames.copy())
    row = next(r for r in exact["rows"] if r["name"] == CEILING)
    assert row["kind"] == "ceiling" and row["L1"] == 0 and row["laplacian_ratio"] == pytest.approx(1)
    assert row["swap_closer_to_A"] is None
    blur = evaluate(cases, [1], None, wide_only, steps=1,
                    reconstruct=lambda frames: np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]))
    row = next(r for r in blur["rows"] if r["name"] == CEILING)
    assert row["L1"] > 0 and row["laplacian_ratio"] < 0.5
    assert f"| {CEILING} | 0 | ground truth |" in markdown_table(blur)
    # the real round trip: shapes and dtype kept, and an untrained VAE does not give the frames back
    vae = AutoencoderKL(block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), norm_num_groups=4, latent_channels=4).eval()
    torch.manual_seed(0)
    frames = cases[0].frames
    out = autoencoder_round_trip(vae, frames, batch=1)
    assert out.shape == frames.shape and out.dtype == np.uint8 and np.abs(out.astype(int) - frames).mean() > 1
