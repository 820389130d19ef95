"""Following one person across the frames of a video, whoever else comes into view.

Every video is followed, also one that starts with a single person: there the
landmarker tracks one pose and, once the person leaves its view, moves on to
whoever else it finds (people seen in turn), and the follower reports those
frames lost, so the track never goes on with someone else silently.

The boxes around each frame's detected bodies go to a ByteTrack tracker (the
``trackers`` package: Kalman-predicted boxes, IoU association, lost tracks kept
for about a second and re-associated); the followed person is one tracker
identity, chosen at the first frame with people (the largest, most central one,
or ``person`` N counted from the left, at the first frame within a second that
shows N people). Given the frames' pixels, the follower also keeps the person's
look (the colours of the torso, a running average): a box of that identity that
suddenly looks like someone else (the landmarker slid onto another person while
one occluded the other; the box stays continuous, so the tracker keeps its
identity) is not taken. Frames where the person has no box, or only one that
looks different, are *lost* and reported: no other person is ever taken in its
place, except that a new identity is accepted back as the followed person when
it appears where the person was last seen, at about the same size, and looks like
them (without pixels: while nobody else is near); those re-finds are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from .convert import pick_person
from .track import BODY_INDEX

VISIBLE = 0.3
TORSO = tuple(BODY_INDEX[n] for n in ("r_shoulder", "l_shoulder", "r_hip", "l_hip"))
LOOKS_DIFFERENT = 0.6   # torso colour distance (Hellinger, 0..1) beyond which a box is someone else
LOOK_UPDATE = 0.4       # closer than this, the box updates the person's look (slow changes of light)
LOOK_MEMORY = 10        # frames the running look averages over


def body_boxes(bodies: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel boxes ``(people, 4)`` x0, y0, x1, y1 around the seen joints of ``bodies (people, 18, 3)`` (normalised)."""
    boxes = np.zeros((len(bodies), 4), np.float64)
    for i, body in enumerate(bodies):
        seen = body[:, 2] > VISIBLE
        xy = body[seen if seen.sum() >= 2 else slice(None), :2] * np.array([width, height])
        boxes[i] = [*xy.min(0), *xy.max(0)]
    return boxes


def numbered_left_to_right(bodies: np.ndarray, width: int, height: int) -> list[int]:
    """Candidate indices ordered by the centre x of their boxes (person 1 is the leftmost)."""
    boxes = body_boxes(bodies, width, height)
    return [int(i) for i in np.argsort(0.5 * (boxes[:, 0] + boxes[:, 2]), kind="stable")]


def torso_colours(rgb: np.ndarray, body: np.ndarray) -> np.ndarray | None:
    """Hue-saturation histogram ``(48,)`` (12 hues x 4 saturations, sums to 1) of the torso of ``body (18, 3)``
    (normalised) in the RGB uint8 frame ``(H, W, 3)``: the box of shoulders and hips shrunk to 70% about its
    centre (less background and arms). None when a torso joint is unseen or the box is under 4 pixels."""
    import cv2

    height, width = rgb.shape[:2]
    torso = body[list(TORSO)]
    if (torso[:, 2] <= VISIBLE).any():
        return None
    pts = torso[:, :2] * np.array([width, height])
    centre = pts.mean(0)
    x0, y0 = np.clip(centre + 0.7 * (pts.min(0) - centre), 0, [width, height]).astype(int)
    x1, y1 = np.clip(centre + 0.7 * (pts.max(0) - centre), 0, [width, height]).astype(int)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    step = max(1, min(x1 - x0, y1 - y0) // 32)  # about 32 samples a side are plenty for a histogram
    patch = np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step])
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [12, 4], [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two histograms summing to 1: 0 the same, 1 disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a * b))))))


@dataclass
class FollowReport:
    """People seen at the start, the followed person's number, frames lost (``others_seen``: those of them
    where somebody was seen but judged someone else and not taken; ``looked_different``: those where it was the
    person's own identity, whose box looked like someone else), and frames where they were re-found;
    ``start_frame`` is the frame where the people were numbered and ``start_boxes`` their pixel boxes there
    (x0, y0, x1, y1), person 1 first (the leftmost), so a user can point at the one to follow."""

    people_at_start: int = 0
    person: int | None = None
    start_frame: int | None = None
    start_boxes: list[list[float]] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    refound: list[int] = field(default_factory=list)
    looked_different: list[int] = field(default_factory=list)
    others_seen: list[int] = field(default_factory=list)

    def lost_spans(self) -> list[tuple[int, int]]:
        spans: list[list[int]] = []
        for f in self.lost:
            if spans and f == spans[-1][1]:
                spans[-1][1] = f + 1
            else:
                spans.append([f, f + 1])
        return [(a, b) for a, b in spans]


def spans_text(spans, shown: int = 4) -> str:
    """Frame spans ``[(start, stop), ...]`` as text, the stop not included: ``"3, 17-24 and 2 more"``."""
    text = ", ".join(f"{a}-{b - 1}" if b - a > 1 else f"{a}" for a, b in spans[:shown])
    return text + (f" and {len(spans) - shown} more" if len(spans) > shown else "")


class PersonFollower:
    """Online: ``choose(bodies, rgb)`` per frame gives the index of the followed person among that frame's
    candidates ``(people, 18, 3)``, or None where it is lost (or nobody is there yet). ``rgb``, the frame
    ``(H, W, 3)``, is optional: without it the person's look is not checked."""

    def __init__(self, width: int, height: int, fps: float = 25.0, person: int | None = None):
        from trackers import ByteTrackTracker

        if person is not None and person < 1:
            raise UserError(f"--person must be 1 or more (people are numbered from the left), got {person}")
        self.width, self.height = width, height
        self.person = person
        self.tracker = ByteTrackTracker(lost_track_buffer=max(1, int(round(fps))), frame_rate=fps,
                                        track_activation_threshold=0.1, minimum_consecutive_frames=1,
                                        high_conf_det_threshold=0.3)
        self.followed: int | None = None
        self.last_box: np.ndarray | None = None
        self.frame = -1
        self.wait = max(1, int(round(fps)))  # frames to wait for person N to appear
        self.most_seen = 0
        self.look: np.ndarray | None = None  # running torso colours of the followed person
        self.looks_seen = 0
        self.others: set[int] = set()  # identities seen beside the followed person: never taken for them
        self.report = FollowReport()

    def _ids(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The tracker identity of each box (-1 when not yet tracked), in the boxes' order."""
        import supervision as sv

        result = self.tracker.update(sv.Detections(xyxy=boxes.astype(np.float32), confidence=scores.astype(np.float32)))
        ids = np.full(len(boxes), -1)
        for box, tid in zip(result.xyxy, result.tracker_id):
            i = int(np.argmin(np.abs(boxes - box).sum(1)))
            ids[i] = int(tid)
        return ids

    def choose(self, bodies: np.ndarray, rgb: np.ndarray | None = None) -> int | None:
        self.frame += 1
        if len(bodies) == 0:
            self._ids(np.zeros((0, 4)), np.zeros(0))
            if self.followed is not None:
                self.report.lost.append(self.frame)
            return None
        self.most_seen = max(self.most_seen, len(bodies))
        boxes = body_boxes(bodies, self.width, self.height)
        scores = np.array([b[b[:, 2] > VISIBLE, 2].mean() if (b[:, 2] > VISIBLE).any() else 0.0 for b in bodies])
        ids = self._ids(boxes, scores)
        looks = [None] * len(bodies) if rgb is None else [torso_colours(rgb, b) for b in bodies]
        if self.followed is None:  # the first frame with people
            order = numbered_left_to_right(bodies, self.width, self.height)
            self.report.people_at_start = len(bodies)
            self.report.start_frame = self.frame
            self.report.start_boxes = [[float(v) for v in boxes[i]] for i in order]
            if self.person is not None:
                if self.person > len(bodies):
                    if self.frame < self.wait:  # the detector may find everyone a few frames later
                        return None
                    self._too_few(f"the first {self.wait} frames")
                index = order[self.person - 1]
            else:
                index = pick_person(bodies, None, self.width, self.height)
            self.report.person = order.index(index) + 1
            self.followed = int(ids[index]) if ids[index] >= 0 else None
            if self.followed is None:  # the tracker did not take it: follow by box until it does
                self.followed = -2
            return self._take(index, boxes, looks, ids)
        match = np.flatnonzero(ids == self.followed)
        if len(match) == 0 and self.followed == -2:  # not tracked yet: the box nearest the chosen one
            index = int(np.argmin(np.abs(boxes - self.last_box).sum(1)))
            if ids[index] >= 0:
                self.followed = int(ids[index])
            return self._take(index, boxes, looks, ids)
        if len(match) and not self._looks_like(looks[int(match[0])]):
            self.report.looked_different.append(self.frame)
            match = match[:0]
        if len(match) == 0:
            index = self._refind(boxes, ids, looks)
            if index is None:
                self.report.lost.append(self.frame)
                self.report.others_seen.append(self.frame)
                return None
            self.report.refound.append(self.frame)
            self.followed = int(ids[index])
            match = np.array([index])
        return self._take(int(match[0]), boxes, looks, ids)

    def finish(self) -> None:
        """After the last frame: a ``person`` N never seen (a clip shorter than the wait) is a :class:`UserError`
        (a clip with nobody at all is left to the caller)."""
        if self.person is not None and self.followed is None and self.most_seen:
            self._too_few("the video")

    def _too_few(self, where: str) -> None:
        people = f"{self.most_seen} {'person' if self.most_seen == 1 else 'people'}"
        raise UserError(f"--person {self.person}: {where} show{'s' if where == 'the video' else ''} at most {people} "
                        "(numbered from the left)")

    def _take(self, index: int, boxes: np.ndarray, looks: list, ids: np.ndarray) -> int:
        """Follow candidate ``index`` this frame: its box is where the person was last seen, the other tracked
        boxes are other people, its colours (when close to the person's) update their look."""
        self.last_box = boxes[index]
        self.others.update(int(i) for k, i in enumerate(ids) if k != index and i >= 0)
        look = looks[index]
        if look is not None and (self.look is None or colour_distance(look, self.look) < LOOK_UPDATE):
            self.looks_seen += 1
            rate = 1.0 / min(self.looks_seen, LOOK_MEMORY)  # a mean over the first frames, then a running average
            self.look = look if self.look is None else (1 - rate) * self.look + rate * look
        return index

    def _looks_like(self, look: np.ndarray | None) -> bool:
        """Whether torso colours ``look`` could be the followed person's (True when either is unknown)."""
        return look is None or self.look is None or colour_distance(look, self.look) < LOOKS_DIFFERENT

    def _refind(self, boxes: np.ndarray, ids: np.ndarray, looks: list) -> int | None:
        """A tracked box where the person was last seen, about its size, that looks like them (without a look
        to compare: while nobody else is near), of an identity never seen beside them (the other people's
        identities are never taken, even when one of them walks where the person was). Else None."""
        if self.last_box is None:
            return None
        size = max(self.last_box[3] - self.last_box[1], self.last_box[2] - self.last_box[0], 1.0)
        centre = 0.5 * (self.last_box[:2] + self.last_box[2:])
        centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        sizes = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0])
        near = np.linalg.norm(centres - centre, axis=1) < 0.5 * size
        similar = (sizes > 0.67 * size) & (sizes < 1.5 * size)
        new = np.array([i >= 0 and i != self.followed and int(i) not in self.others for i in ids], bool)
        candidates = np.flatnonzero(near & similar & new)
        if self.look is not None:
            alike = [i for i in candidates if looks[i] is not None and colour_distance(looks[i], self.look) < LOOK_UPDATE]
            return int(alike[0]) if len(alike) == 1 else None
        if len(candidates) != 1 or near.sum() != 1:
            return None
        return int(candidates[0])


def follow_person(frames: list[np.ndarray], width: int, height: int, fps: float = 25.0,
                  person: int | None = None, images: list[np.ndarray] | None = None) -> tuple[list[int | None], FollowReport]:
    """The followed candidate's index in every frame (None: lost or nobody yet) of ``frames``, each an array
    ``(people, 18, 3)`` of that frame's bodies, and the report. ``images``: the RGB frames ``(H, W, 3)``, to
    check the person's look."""
    follower = PersonFollower(width, height, fps, person)
    pixels = images if images is not None else [None] * len(frames)
    chosen = [follower.choose(np.asarray(bodies).reshape(-1, 18, 3), rgb) for bodies, rgb in zip(frames, pixels)]
    follower.finish()
    return chosen, follower.report
