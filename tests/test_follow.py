"""Person following (engine/poses/follow.py) on small hand-made tracks: two people crossing, a landmarker that
slides onto someone else, a person hidden behind another, people seen one at a time, one person who moves, turns
and is lit differently, and ``--person N`` past the people there are."""

import json
import re

import cv2
import numpy as np
import pytest
from skimage import data

from engine.cli import main
from engine.poses import PoseTrack, fill_gaps, load_pose_file
from engine.poses.cli import extract_summary
from engine.poses.follow import LOOKS_DIFFERENT, colour_distance, follow_person, torso_colours
from engine.poses.track import BODY_INDEX as J, NUM_KEYPOINTS
from engine.video import write_video
from tests.test_camera import STANDING
from tests.test_poses import two_astronauts

W, H = 640, 360
RED, BLUE = (200, 40, 40), (40, 70, 200)


def body_at(x: float, scale: float = 1.0, y: float = 0.5) -> np.ndarray:
    """A standing body ``(18, 3)``, normalised, centred at ``x``."""
    body = np.zeros((18, 3), np.float32)
    for name, (bx, by) in STANDING.items():
        body[J[name]] = (x + (bx - 0.5) * 0.3 * scale, y + (by - 0.5) * 0.6 * scale, 0.9)
    return body


def paint(*people: tuple[np.ndarray, tuple[int, int, int]]) -> np.ndarray:
    """A grey frame with each body's torso (shoulders to hips, a little wider) in its shirt colour, in order
    (a later person hides an earlier one)."""
    frame = np.full((H, W, 3), 110, np.uint8)
    for body, colour in people:
        pts = body[[J["r_shoulder"], J["l_shoulder"], J["r_hip"], J["l_hip"]], :2] * [W, H]
        (x0, y0), (x1, y1) = pts.min(0) - 4, pts.max(0) + 4
        cv2.rectangle(frame, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1)
    return frame


def shirt(frame: np.ndarray, body: np.ndarray) -> tuple[int, ...]:
    """The colour under the middle of ``body``'s torso: who the follower took, independent of the tracker."""
    x, y = body[[J["neck"], J["r_hip"], J["l_hip"]], :2].mean(0) * [W, H]
    return tuple(int(v) for v in frame[int(y), int(x)])


@pytest.mark.parametrize("with_pixels", [True, False])
def test_two_crossing_people_keep_their_identities(with_pixels):
    frames, images = [], []
    for t in range(40):
        a, b = body_at(0.2 + 0.015 * t), body_at(0.8 - 0.015 * t, scale=0.9)
        frames.append(np.stack([a, b] if t % 3 else [b, a]))  # the detector's order changes
        images.append(paint((b, BLUE), (a, RED)))
    chosen, report = follow_person(frames, W, H, 25.0, person=1, images=images if with_pixels else None)
    assert report.person == 1 and not report.lost and not report.looked_different
    assert {shirt(images[t], frames[t][i]) for t, i in enumerate(chosen)} == {RED}


def test_a_landmarker_that_slides_onto_someone_else_is_not_followed():
    """One continuous box (the tracker keeps its identity) that lies on another person's shirt for a while, as
    when one person passes in front of the other: those frames are lost, and taken again once it is back."""
    frames, images = [], []
    for t in range(45):
        body = body_at(0.40 + 0.002 * t)
        frames.append(body[None])
        images.append(paint((body, BLUE if 20 <= t < 30 else RED)))
    chosen, report = follow_person(frames, W, H, 25.0, images=images)
    assert [c is None for c in chosen] == [not (t < 20 or t >= 30) for t in range(45)]
    assert report.lost == report.looked_different == list(range(20, 30)) and not report.refound
    # without the pixels nothing can tell: the box is followed throughout
    assert None not in follow_person(frames, W, H, 25.0)[0]
    line = extract_summary("p.json", 45, 35, follow=report)
    assert ("lost them in 10 frames (20-29), in 10 of them only someone else was seen (not taken; in 10 their own "
            "box looked like someone else)") in line
    assert "followed person" not in line  # one person at the start: nobody to number


@pytest.mark.parametrize("with_pixels", [True, False])
def test_a_hidden_person_is_lost_and_the_gap_is_filled_from_them_only(with_pixels):
    """The followed person walks behind a bystander and is not detected for 8 frames, while the bystander's box
    is where they were last seen: the bystander is never taken, and the filled gap runs from the person's last
    pose to their next one."""
    truth, frames, images = [], [], []
    bystander = body_at(0.55, scale=0.95)
    for t in range(40):
        person = body_at(0.3 + 0.012 * t)
        truth.append(person)
        hidden = 17 <= t < 25
        frames.append(bystander[None] if hidden else np.stack([bystander, person]))
        images.append(paint((person, RED), (bystander, BLUE)) if hidden else paint((bystander, BLUE), (person, RED)))
    chosen, report = follow_person(frames, W, H, 25.0, person=1, images=images if with_pixels else None)
    assert all(chosen[t] is None for t in range(17, 25))
    assert report.lost == list(range(17, 25))
    followed = [t for t, c in enumerate(chosen) if c is not None]
    assert all(shirt(images[t], frames[t][chosen[t]]) == RED for t in followed)
    assert followed == [t for t in range(40) if not 17 <= t < 25]

    keypoints = np.zeros((40, NUM_KEYPOINTS, 3), np.float32)
    for t in followed:
        keypoints[t, :18] = frames[t][chosen[t]]
    track = PoseTrack(keypoints, W, H, 25.0, detected=np.array([c is not None for c in chosen]))
    filled, gaps = fill_gaps(track)
    assert gaps.filled == 8
    # the person walks at constant speed: the gap filled from their own poses is where they really were
    np.testing.assert_allclose(filled.keypoints[17:25, :18], np.stack(truth[17:25]), atol=1e-5)


def turned(body: np.ndarray, share: float) -> np.ndarray:
    """``body`` turned away from the camera: its width about the neck at ``share`` of facing it."""
    out = body.copy()
    out[:, 0] = body[J["neck"], 0] + share * (body[:, 0] - body[J["neck"], 0])
    return out


def paint_striped(body: np.ndarray, colours: tuple, share: float) -> np.ndarray:
    """A grey frame with ``body``'s torso in stripes of two colours, ``share`` of the rows in the first."""
    frame = paint((body, colours[1]))
    pts = body[[J["r_shoulder"], J["l_shoulder"], J["r_hip"], J["l_hip"]], :2] * [W, H]
    (x0, y0), (x1, y1) = (pts.min(0) - 4).astype(int), (pts.max(0) + 4).astype(int)
    for y in range(y0, y1 + 1):
        if (y - y0) % 10 < round(10 * share):
            frame[y, x0:x1 + 1] = colours[0]
    return frame


@pytest.mark.parametrize("where, colour, with_pixels", [
    ("where they were", BLUE, True),    # the tracker keeps their identity: the look tells
    ("across the frame", BLUE, True),   # a new identity, elsewhere, and looking different
    ("across the frame", RED, True),    # the same shirt colour: the jump in position tells
    ("across the frame", RED, False),
], ids=["same-place-other-shirt", "elsewhere-other-shirt", "elsewhere-same-shirt", "elsewhere-no-pixels"])
def test_someone_else_in_turn_is_reported_lost_not_followed(where, colour, with_pixels):
    """One person at a time (the landmarker tracks a single pose and moves on to whoever is there next): the
    person walks out of view at frame 20 and someone else comes in at frame 23; from frame 20 on the person is
    lost, the newcomer is never taken, and the summary line says so."""
    frames, images = [], []
    for t in range(40):
        if t < 20:
            body, shirt_colour = body_at(0.30 + 0.002 * t), RED
        else:
            start = 0.34 if where == "where they were" else 0.75
            body, shirt_colour = body_at(start + 0.002 * (t - 20), 0.95), colour
        frames.append(body[None] if not 20 <= t < 23 else np.zeros((0, 18, 3), np.float32))
        images.append(paint((body, shirt_colour)) if len(frames[-1]) else paint())
    chosen, report = follow_person(frames, W, H, 25.0, images=images if with_pixels else None)
    assert chosen[:20] == [0] * 20 and chosen[20:] == [None] * 20
    assert report.lost == list(range(20, 40)) and report.others_seen == list(range(23, 40)) and not report.refound
    line = extract_summary("p.json", 40, 20, follow=report)
    assert "lost them in 20 frames (20-39), in 17 of them only someone else was seen (not taken" in line


@pytest.mark.parametrize("out_of_view", [False, True])
def test_one_person_who_moves_turns_and_is_lit_differently_is_never_lost(out_of_view):
    """A person alone walks across the frame coming closer, turns sideways, and the light on their shirt warms
    until it has none of its first colours (a running look, not the first one, is compared); optionally out of
    the landmarker's view for 5 frames on the way. Only those 5 frames are lost, never the rest."""
    amber = (200, 140, 40)
    frames, images = [], []
    for t in range(120):
        body = turned(body_at(0.25 + 0.004 * t, 0.9 + 0.002 * t), 1.0 - 0.004 * t)
        hidden = out_of_view and 60 <= t < 65
        frames.append(np.zeros((0, 18, 3), np.float32) if hidden else body[None])
        images.append(paint() if hidden else paint_striped(body, (RED, amber), 1.0 - t / 119))
    first, last = (torso_colours(images[t], frames[t][0]) for t in (0, -1))
    assert colour_distance(first, last) > LOOKS_DIFFERENT  # the first look alone would call them someone else
    chosen, report = follow_person(frames, W, H, 25.0, images=images)
    hidden = list(range(60, 65)) if out_of_view else []
    assert [t for t, c in enumerate(chosen) if c is None] == report.lost == hidden
    assert not report.others_seen and not report.looked_different and not report.refound


@pytest.fixture(scope="module")
def two_people_video(tmp_path_factory):
    frames = two_astronauts(data.astronaut(), 6)
    return write_video(tmp_path_factory.mktemp("two") / "two.mp4", np.stack(frames), fps=12)


def test_pose_extract_reports_someone_else_in_turn_as_lost(tmp_path, capsys):
    """A video whose first frame shows one person (so the landmarker tracks a single pose) and who is replaced by
    someone else, smaller, elsewhere and in another colour: the track stays on the first person and the summary
    line reports the rest lost, with someone else seen."""
    astronaut = data.astronaut()
    first, other = cv2.resize(astronaut, (320, 320)), cv2.resize(astronaut, (200, 200))[..., ::-1]  # a blue suit
    frames = []
    for t in range(16):
        canvas = np.full((320, 512, 3), 255, np.uint8)
        if t < 8:
            canvas[:, 10 + t:330 + t] = first
        else:
            canvas[110:310, 290 + t:490 + t] = other
        frames.append(canvas)
    path = write_video(tmp_path / "turn.mp4", np.stack(frames), fps=12)
    out = tmp_path / "p.json"
    assert main(["pose", "extract", str(path), "-o", str(out), "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    assert re.search(r"a person in 8; lost them in 8 frames \(8-15\), in \d of them only someone else", line), line
    assert line.endswith("interpolated 0 frames in 0 gaps, held the nearest pose in 8 frames at the ends")
    raw = json.loads(out.read_text())
    assert [f["detected"] for f in raw["frames"]] == [True] * 8 + [False] * 8
    track = load_pose_file(out)
    assert (track.keypoints[:, J["nose"], 0] * track.width < 290).all()  # held on the first person, never the other


def test_person_past_the_people_there_is_one_clear_error(two_people_video, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["pose", "extract", str(two_people_video), "--person", "7", "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("freeview: error: --person 7:") and "people" in err[0], err
    assert not out.exists()
