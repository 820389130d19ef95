"""The explicit pose correspondence: part-wise warps of reference photos into a target pose."""

import cv2
import numpy as np
import pytest

from engine.warps import PART_NAMES, ReferenceWarper, body_scale, compose_references, fit_affine, fit_similarity, limb_map
from engine.warps.parts import L_ANKLE, L_KNEE, NECK, NOSE, R_ANKLE, R_KNEE


def stick_person(scale: float = 1.0, shift=(0.0, 0.0), arm_angle: float = 0.0) -> np.ndarray:
    """Normalised keypoints ``(128, 3)`` of a standing person facing the camera (body only)."""
    body = {
        0: (0.50, 0.14), 1: (0.50, 0.24), 2: (0.40, 0.25), 3: (0.37, 0.38), 4: (0.35, 0.50), 5: (0.60, 0.25),
        6: (0.63, 0.38), 7: (0.65, 0.50), 8: (0.45, 0.52), 9: (0.45, 0.70), 10: (0.45, 0.88), 11: (0.55, 0.52),
        12: (0.55, 0.70), 13: (0.55, 0.88), 14: (0.48, 0.12), 15: (0.52, 0.12), 16: (0.46, 0.13), 17: (0.54, 0.13),
    }
    keypoints = np.zeros((128, 3), np.float32)
    centre = np.array([0.5, 0.5])
    for i, (x, y) in body.items():
        keypoints[i, :2] = centre + (np.array([x, y]) - centre) * scale + np.array(shift)
        keypoints[i, 2] = 1.0
    if arm_angle:  # swing the left forearm about the elbow
        elbow, wrist = keypoints[6, :2].copy(), keypoints[7, :2].copy()
        c, s = np.cos(arm_angle), np.sin(arm_angle)
        keypoints[7, :2] = elbow + np.array([[c, -s], [s, c]]) @ (wrist - elbow)
    return keypoints


PART_COLOURS = {"torso": (200, 40, 40), "legs": (40, 40, 200), "arms": (40, 200, 40), "head": (230, 190, 150)}


def paint(keypoints: np.ndarray, size: int = 128, background=(90, 90, 90)) -> np.ndarray:
    """A flat-coloured picture of ``keypoints``: a red torso, blue legs, green arms, a skin-coloured head."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = background
    xy = lambda i: tuple(int(round(v)) for v in keypoints[i, :2] * size)
    k = np.linalg.norm(keypoints[1, :2] - (keypoints[8, :2] + keypoints[11, :2]) / 2) / 0.28  # thickness follows the body
    cv2.fillConvexPoly(image, np.array([xy(2), xy(5), xy(11), xy(8)]), PART_COLOURS["torso"])
    for a, b in ((8, 9), (9, 10), (11, 12), (12, 13)):
        cv2.line(image, xy(a), xy(b), PART_COLOURS["legs"], max(1, round(7 * k)))
    for a, b in ((2, 3), (3, 4), (5, 6), (6, 7)):
        cv2.line(image, xy(a), xy(b), PART_COLOURS["arms"], max(1, round(5 * k)))
    cv2.circle(image, xy(0), max(1, round(7 * k)), PART_COLOURS["head"], -1)
    return image


def test_fit_similarity_recovers_a_known_map():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (6, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -8.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = fit_similarity(points, points @ rotation.T + shift)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    assert fit_similarity(points[:1], points[:1]) is None


def test_fit_affine_refuses_collinear_points():
    line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0001]])
    assert fit_affine(line, line) is None
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    sheared = square @ np.array([[1.0, 0.5], [0.0, 2.0]]).T
    np.testing.assert_allclose(fit_affine(square, sheared)[:, :2], [[1.0, 0.5], [0.0, 2.0]], atol=1e-9)


def test_limb_map_takes_the_target_segment_onto_the_reference_segment():
    p_t, q_t, p_r, q_r = np.array([10.0, 10.0]), np.array([30.0, 10.0]), np.array([50.0, 40.0]), np.array([50.0, 80.0])
    matrix = limb_map(p_t, q_t, p_r, q_r, scale_t=20.0, scale_r=40.0)
    apply = lambda p: matrix[:, :2] @ p + matrix[:, 2]
    np.testing.assert_allclose(apply(p_t), p_r, atol=1e-9)
    np.testing.assert_allclose(apply(q_t), q_r, atol=1e-9)
    # across the limb it scales by the body-scale ratio (2x), not by the length ratio
    across = apply(p_t + np.array([0.0, 1.0])) - p_r
    assert np.isclose(np.linalg.norm(across), 2.0)
    assert limb_map(p_t, p_t, p_r, q_r, 20.0, 40.0) is None


def test_body_scale_is_robust_to_a_missing_measure():
    keypoints = stick_person()
    xy, conf = keypoints[:, :2] * 100, keypoints[:, 2]
    full = body_scale(xy, conf)
    conf_no_hips = conf.copy()
    conf_no_hips[[8, 11]] = 0
    assert abs(body_scale(xy, conf_no_hips) - full) / full < 0.35
    assert body_scale(xy, np.zeros_like(conf)) is None


def test_the_same_photo_in_its_own_pose_comes_back():
    keypoints = stick_person()
    photo = paint(keypoints)
    composite = compose_references([photo], [keypoints], keypoints, 128, 128)
    covered = composite.coverage > 0.9
    assert covered.mean() > 0.1
    error = np.abs(composite.image.astype(int) - photo.astype(int))[covered].mean()
    assert error < 6, error


def test_a_moved_and_scaled_person_is_followed():
    ref_kp, target_kp = stick_person(0.7, (-0.1, 0.0)), stick_person(1.0, (0.05, 0.02), arm_angle=-0.8)
    composite = compose_references([paint(ref_kp)], [ref_kp], target_kp, 128, 128)
    truth = paint(target_kp)
    covered = composite.coverage > 0.9
    wrong = (np.abs(composite.image.astype(int) - truth.astype(int)).max(-1) > 60)[covered].mean()
    assert wrong < 0.12, wrong
    # the swung forearm lands where the target's forearm is (green)
    elbow, wrist = target_kp[6, :2] * 128, target_kp[7, :2] * 128
    x, y = np.round((elbow + wrist) / 2).astype(int)
    assert np.abs(composite.image[y, x].astype(int) - PART_COLOURS["arms"]).max() < 40


def test_each_part_comes_from_the_reference_that_shows_it_best():
    target = stick_person()
    wide = stick_person(0.8)
    close = stick_person(2.6, (0.0, 0.55))          # the head and shoulders, large; legs far outside the photo
    composite = compose_references([paint(wide), paint(close)], [wide, close], target, 128, 128)
    assert composite.sources["head"] == 1           # the close-up for the face
    assert composite.sources["right shin"] == 0     # the wide shot for the legs and shoes
    assert composite.sources["left foot"] == 0
    assert set(composite.sources) == set(PART_NAMES)


def test_a_reference_without_legs_contributes_nothing_there():
    target = stick_person()
    close = stick_person(2.6, (0.0, 0.55))
    close[[R_KNEE, R_ANKLE, L_KNEE, L_ANKLE], 2] = 0  # a close-up: the detector does not see the legs
    composite = compose_references([paint(close)], [close], target, 128, 128)
    assert composite.sources["right shin"] == -1 and composite.sources["left foot"] == -1
    ankle = np.round(target[R_ANKLE, :2] * 128).astype(int)
    assert composite.coverage[ankle[1], ankle[0]] < 0.05


def test_nothing_outside_the_photo_is_read():
    target = stick_person(1.0)
    crop = stick_person(1.6, (0.0, 0.2))  # the person runs out of the bottom of the photo
    photo = np.full((128, 128, 3), 250, np.uint8)
    composite = compose_references([photo], [crop], target, 128, 128)
    covered = composite.coverage > 0.05
    assert covered.any()
    assert composite.image[covered].min() >= 240  # black would mean pixels from beyond the photo's edge


def test_no_person_anywhere_gives_the_background_only():
    empty = np.zeros((128, 3), np.float32)
    photo = paint(stick_person())
    composite = compose_references([photo], [empty], stick_person(), 96, 64)
    assert composite.image.shape == (96, 64, 3) and composite.coverage.shape == (96, 64)
    assert composite.coverage.max() == 0 and set(composite.sources.values()) == {-1}
    nobody = compose_references([photo], [stick_person()], empty, 64, 64)
    assert nobody.coverage.max() == 0


def test_compose_track_matches_single_frames():
    refs = [stick_person(0.8)]
    warper = ReferenceWarper([paint(refs[0])], refs)
    track = np.stack([stick_person(), stick_person(arm_angle=0.5)])
    images, coverage = warper.compose_track(track, 64, 64)
    assert images.shape == (2, 64, 64, 3) and coverage.shape == (2, 64, 64)
    np.testing.assert_array_equal(images[1], warper.compose(track[1], 64, 64).image)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="2 reference images but 1"):
        ReferenceWarper([paint(stick_person())] * 2, [stick_person()])
    with pytest.raises(ValueError, match="RGB"):
        ReferenceWarper([np.zeros((8, 8), np.uint8)], [stick_person()])


def test_head_moves_with_the_face():
    ref = stick_person()
    target = stick_person()
    target[[NOSE, 14, 15, 16, 17], 0] += 0.06  # the head leans right, the neck stays
    composite = compose_references([paint(ref)], [ref], target, 128, 128)
    nose = np.round(target[NOSE, :2] * 128).astype(int)
    assert np.abs(composite.image[nose[1], nose[0]].astype(int) - PART_COLOURS["head"]).max() < 40
    assert composite.sources["head"] == 0 and target[NECK, 2] == 1
