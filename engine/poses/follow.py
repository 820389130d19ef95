"""Following one person across the frames of a video with several people.

The boxes around each frame's detected bodies go to a ByteTrack tracker (the
``trackers`` package: Kalman-predicted boxes, IoU association, lost tracks kept
for about a second and re-associated); the followed person is one tracker
identity, chosen at the first frame with people (the largest, most central one,
or ``person`` N counted from the left, at the first frame within a second that
shows N people). Frames where that identity has no box are
*lost* and reported: no other person is ever taken in its place, except that a
new identity is accepted back as the followed person when it appears where the
person was last seen, at about the same size, while nobody else is near; those
re-finds are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from .convert import pick_person

VISIBLE = 0.3


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


@dataclass
class FollowReport:
    """People seen at the start, the followed person's number, frames lost, and frames where it was re-found;
    ``start_frame`` is the frame where the people were numbered and ``start_boxes`` their pixel boxes there
    (x0, y0, x1, y1), person 1 first (the leftmost), so a user can point at the one to follow."""

    people_at_start: int = 0
    person: int | None = None
    start_frame: int | None = None
    start_boxes: list[list[float]] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    refound: list[int] = field(default_factory=list)

    def lost_spans(self) -> list[tuple[int, int]]:
        spans: list[list[int]] = []
        for f in self.lost:
            if spans and f == spans[-1][1]:
                spans[-1][1] = f + 1
            else:
                spans.append([f, f + 1])
        return [(a, b) for a, b in spans]


class PersonFollower:
    """Online: ``choose(bodies)`` per frame gives the index of the followed person among that frame's
    candidates ``(people, 18, 3)``, or None where it is lost (or nobody is there yet)."""

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

    def choose(self, bodies: np.ndarray) -> int | None:
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
        if self.followed is None:  # the first frame with people
            order = numbered_left_to_right(bodies, self.width, self.height)
            self.report.people_at_start = len(bodies)
            self.report.start_frame = self.frame
            self.report.start_boxes = [[float(v) for v in boxes[i]] for i in order]
            if self.person is not None:
                if self.person > len(bodies):
                    if self.frame < self.wait:  # the detector may find everyone a few frames later
                        return None
                    raise UserError(f"--person {self.person}: the first {self.wait} frames show at most "
                                    f"{self.most_seen} people, numbered from the left")
                index = order[self.person - 1]
            else:
                index = pick_person(bodies, None, self.width, self.height)
            self.report.person = order.index(index) + 1
            self.followed = int(ids[index]) if ids[index] >= 0 else None
            if self.followed is None:  # the tracker did not take it: follow by box until it does
                self.followed = -2
            self.last_box = boxes[index]
            return index
        match = np.flatnonzero(ids == self.followed)
        if len(match) == 0 and self.followed == -2:  # not tracked yet: the box nearest the chosen one
            index = int(np.argmin(np.abs(boxes - self.last_box).sum(1)))
            self.last_box = boxes[index]
            if ids[index] >= 0:
                self.followed = int(ids[index])
            return index
        if len(match) == 0:
            index = self._refind(boxes, ids)
            if index is None:
                self.report.lost.append(self.frame)
                return None
            self.report.refound.append(self.frame)
            self.followed = int(ids[index])
            match = np.array([index])
        index = int(match[0])
        self.last_box = boxes[index]
        return index

    def _refind(self, boxes: np.ndarray, ids: np.ndarray) -> int | None:
        """A new identity where the person was last seen, about its size, with nobody else near; else None."""
        if self.last_box is None:
            return None
        size = max(self.last_box[3] - self.last_box[1], self.last_box[2] - self.last_box[0], 1.0)
        centre = 0.5 * (self.last_box[:2] + self.last_box[2:])
        centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        sizes = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0])
        near = np.linalg.norm(centres - centre, axis=1) < 0.5 * size
        similar = (sizes > 0.67 * size) & (sizes < 1.5 * size)
        candidates = np.flatnonzero(near & similar & (ids >= 0))
        if len(candidates) != 1 or near.sum() != 1:
            return None
        return int(candidates[0])


def follow_person(frames: list[np.ndarray], width: int, height: int, fps: float = 25.0,
                  person: int | None = None) -> tuple[list[int | None], FollowReport]:
    """The followed candidate's index in every frame (None: lost or nobody yet) of ``frames``, each an array
    ``(people, 18, 3)`` of that frame's bodies, and the report."""
    follower = PersonFollower(width, height, fps, person)
    chosen = [follower.choose(np.asarray(bodies).reshape(-1, 18, 3)) for bodies in frames]
    return chosen, follower.report
