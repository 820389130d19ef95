"""Procedural 3D motion in the shared 128-keypoint layout.

A motion is a timeline of gestures (presentation beats, arm raises, pointing,
hand on chest), weight shifts, small steps, torso turns and occasional walks.
Keyframed parameters are eased into each other; feet stay planted and step
when the body moves away from them (two-bone IK for the legs); arms swing with
the steps. World coordinates follow :mod:`engine.poses.track`: metres, x right,
y down, z away from the camera, the person facing -z at yaw 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.poses.track import BODY_INDEX, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND

from .character import Character

FPS = 25.0
MAX_TURN = 0.78  # radians: the body faces the camera within about 45 degrees

PARAMS = (
    "x", "z", "yaw", "twist", "shift", "lean", "head_yaw", "head_pitch", "head_roll", "beat",
    "r_abd", "r_flex", "r_elbow", "r_swivel", "r_roll", "r_curl", "r_point",
    "l_abd", "l_flex", "l_elbow", "l_swivel", "l_roll", "l_curl", "l_point",
)
P = {name: i for i, name in enumerate(PARAMS)}
ROOT_PARAMS = ("x", "z", "yaw")


@dataclass
class Motion:
    """Per-frame 3D body state.

    joints: ``(frames, 128, 3)`` world keypoints (metres).
    torso, pelvis, head: ``(frames, 3, 3)`` rotation matrices (local -> world).
    pelvis_pos: ``(frames, 3)``; foot_yaw: ``(frames, 2)`` (right, left); jaw: ``(frames,)`` mouth opening 0..1.
    floor_y: the floor height (world y).
    """

    joints: np.ndarray
    torso: np.ndarray
    pelvis: np.ndarray
    head: np.ndarray
    pelvis_pos: np.ndarray
    foot_yaw: np.ndarray
    jaw: np.ndarray
    floor_y: float

    def __len__(self) -> int:
        return self.joints.shape[0]


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else v


def _rotate_about(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of ``v`` about the unit ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    return v * c + np.cross(axis, v) * s + axis * np.dot(axis, v) * (1 - c)


def face_template() -> np.ndarray:
    """The iBUG-68 layout on a unit head, ``(68, 3)``: x right (person's left), y down, z back; the face looks to -z."""
    pts = np.zeros((68, 3))
    a = np.pi * np.arange(17) / 16
    pts[0:17, 0] = -0.97 * np.cos(a)
    pts[0:17, 1] = -0.12 + 1.1 * np.sin(a)
    s = np.linspace(0, 1, 5)
    pts[17:22, 0] = -0.78 + 0.58 * s
    pts[17:22, 1] = -0.36 - 0.1 * np.sin(np.pi * (0.3 + 0.7 * s))
    pts[22:27, 0] = 0.2 + 0.58 * s
    pts[22:27, 1] = -0.36 - 0.1 * np.sin(np.pi * (0.3 + 0.7 * (1 - s)))
    pts[27:31, 1] = np.linspace(-0.24, 0.2, 4)
    pts[31:36, 0] = np.linspace(-0.18, 0.18, 5)
    pts[31:36, 1] = 0.28 + 0.04 * np.cos(np.linspace(-1.2, 1.2, 5))
    for base, cx, sign in ((36, -0.38, -1), (42, 0.38, 1)):
        ang = np.array([np.pi, 2 * np.pi / 3, np.pi / 3, 0.0, -np.pi / 3, -2 * np.pi / 3])
        if sign > 0:  # the left eye starts at its inner corner
            ang = np.pi - ang
        pts[base:base + 6, 0] = cx + 0.2 * np.cos(ang)
        pts[base:base + 6, 1] = -0.15 - 0.13 * np.sin(ang)
    outer = np.linspace(np.pi, -np.pi, 13)[:12]
    pts[48:60, 0] = 0.32 * np.cos(outer)
    pts[48:60, 1] = 0.56 - 0.08 * np.sin(outer)
    inner = np.array([np.pi, 3 * np.pi / 4, np.pi / 2, np.pi / 4, 0.0, -np.pi / 4, -np.pi / 2, -3 * np.pi / 4])
    pts[60:68, 0] = 0.24 * np.cos(inner)
    pts[60:68, 1] = 0.56 - 0.02 * np.sin(inner)
    flat = np.clip(1 - pts[:, 0] ** 2 - (0.75 * pts[:, 1]) ** 2, 0.06, 1)
    pts[:, 2] = -np.sqrt(flat)
    pts[27:31, 2] -= np.linspace(0.05, 0.28, 4)  # the nose stands out
    pts[31:36, 2] -= 0.12
    return pts


FACE_TEMPLATE = face_template()


# --------------------------------------------------------------------------- keyframes


def _rest_pose(rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
    p = previous.copy()
    for side in "rl":
        p[P[f"{side}_abd"]] = rng.uniform(0.1, 0.22)
        p[P[f"{side}_flex"]] = rng.uniform(-0.05, 0.15)
        p[P[f"{side}_elbow"]] = rng.uniform(0.15, 0.45)
        p[P[f"{side}_swivel"]] = rng.uniform(0.2, 0.6)
        p[P[f"{side}_roll"]] = rng.uniform(-0.2, 0.2)
        p[P[f"{side}_curl"]] = rng.uniform(0.35, 0.7)
        p[P[f"{side}_point"]] = 0.0
    p[P["beat"]] = 0.0
    p[P["twist"]] *= 0.5
    p[P["shift"]] *= 0.3
    p[P["lean"]] = rng.uniform(-0.03, 0.05)
    p[P["head_pitch"]] = rng.uniform(-0.05, 0.1)
    p[P["head_roll"]] = rng.uniform(-0.05, 0.05)
    return p


def _action(rng: np.random.Generator, p: np.ndarray, kind: str) -> np.ndarray:
    """Target parameters for one action, starting from ``p`` (a rest pose)."""
    p = p.copy()
    sides = ("r", "l") if rng.random() < 0.5 else (("r",) if rng.random() < 0.5 else ("l",))
    if kind == "present":
        for side in ("r", "l") if rng.random() < 0.7 else sides:
            p[P[f"{side}_abd"]] = rng.uniform(0.2, 0.55)
            p[P[f"{side}_flex"]] = rng.uniform(0.2, 0.7)
            p[P[f"{side}_elbow"]] = rng.uniform(1.1, 1.7)
            p[P[f"{side}_swivel"]] = rng.uniform(-0.3, 0.4)
            p[P[f"{side}_roll"]] = rng.uniform(0.6, 1.5)
            p[P[f"{side}_curl"]] = rng.uniform(0.1, 0.4)
        p[P["beat"]] = rng.uniform(0.1, 0.3)
    elif kind == "raise":
        for side in sides:
            p[P[f"{side}_abd"]] = rng.uniform(2.0, 2.8)
            p[P[f"{side}_flex"]] = rng.uniform(-0.1, 0.3)
            p[P[f"{side}_elbow"]] = rng.uniform(0.05, 0.6)
            p[P[f"{side}_roll"]] = rng.uniform(0.0, 1.0)
            p[P[f"{side}_curl"]] = rng.uniform(0.0, 0.3)
    elif kind == "point":
        side = sides[0]
        p[P[f"{side}_abd"]] = rng.uniform(1.0, 1.5)
        p[P[f"{side}_flex"]] = rng.uniform(0.1, 1.0)
        p[P[f"{side}_elbow"]] = rng.uniform(0.0, 0.25)
        p[P[f"{side}_roll"]] = rng.uniform(-0.3, 0.3)
        p[P[f"{side}_curl"]] = 1.4
        p[P[f"{side}_point"]] = 1.0
        p[P["head_yaw"]] = (0.35 if side == "l" else -0.35) * rng.uniform(0.5, 1.0)
    elif kind == "chest":
        side = sides[0]
        p[P[f"{side}_abd"]] = rng.uniform(0.25, 0.45)
        p[P[f"{side}_flex"]] = rng.uniform(0.3, 0.6)
        p[P[f"{side}_elbow"]] = rng.uniform(1.9, 2.3)
        p[P[f"{side}_swivel"]] = rng.uniform(0.9, 1.3)
        p[P[f"{side}_roll"]] = rng.uniform(-0.6, -0.2)
        p[P[f"{side}_curl"]] = rng.uniform(0.1, 0.4)
    elif kind == "shift":
        p[P["shift"]] = rng.choice([-1, 1]) * rng.uniform(0.03, 0.06)
        p[P["lean"]] = rng.uniform(-0.04, 0.04)
    elif kind == "turn":
        p[P["yaw"]] = rng.choice([-1, 1]) * rng.uniform(0.25, 0.65)
        p[P["twist"]] = rng.uniform(-0.15, 0.15)
    elif kind == "step":
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.12, 0.3)
        p[P["x"]] += dist * np.cos(ang)
        p[P["z"]] = np.clip(p[P["z"]] + dist * np.sin(ang), -0.4, 0.4)
    elif kind == "walk":
        direction = rng.choice([-1, 1])
        p[P["x"]] += direction * rng.uniform(0.8, 1.5)
        p[P["z"]] = np.clip(p[P["z"]] + rng.uniform(-0.3, 0.3), -0.4, 0.4)
        p[P["yaw"]] = -direction * rng.uniform(0.5, MAX_TURN)  # face roughly where the walk goes
        p[P["twist"]] = 0.0
    elif kind != "rest":
        raise ValueError(f"unknown action {kind!r}")
    p[P["yaw"]] = np.clip(p[P["yaw"]], -MAX_TURN, MAX_TURN)
    p[P["twist"]] = np.clip(p[P["twist"]], -MAX_TURN - p[P["yaw"]], MAX_TURN - p[P["yaw"]])
    return p


ACTIONS = ("present", "raise", "point", "chest", "rest", "shift", "turn", "step", "walk")
ACTION_WEIGHTS = np.array([0.24, 0.1, 0.12, 0.07, 0.12, 0.1, 0.12, 0.08, 0.05])


def motion_parameters(num_frames: int, seed: int, fps: float = FPS) -> np.ndarray:
    """Eased keyframed parameters, ``(frames, len(PARAMS))``, plus idle sway and gesture beats."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x307]))
    duration = num_frames / fps
    p = np.zeros(len(PARAMS))
    p[P["yaw"]] = rng.uniform(-0.3, 0.3)
    p = _rest_pose(rng, p)
    times, keys = [0.0], [p]
    t = rng.uniform(0.0, 0.6)
    while t < duration + 1.0:
        kind = ACTIONS[rng.choice(len(ACTIONS), p=ACTION_WEIGHTS / ACTION_WEIGHTS.sum())]
        rest = _rest_pose(rng, keys[-1])
        target = _action(rng, rest, kind)
        travel = abs(target[P["x"]] - keys[-1][P["x"]])
        ease = max(rng.uniform(0.45, 0.8), travel / 0.9)  # walks go at about 0.9 m/s
        times += [t, t + ease]
        keys += [keys[-1], target]
        t += ease + rng.uniform(0.4, 1.4)
        if rng.random() < 0.35:  # back to rest between some gestures
            times += [t, t + 0.5]
            keys += [target, _rest_pose(rng, target)]
            t += 0.5 + rng.uniform(0.2, 0.8)
    times = np.array(times)
    keys = np.stack(keys)
    ft = np.arange(num_frames) / fps
    idx = np.clip(np.searchsorted(times, ft, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[idx + 1] - times[idx], 1e-6)
    u = np.clip((ft - times[idx]) / span, 0, 1)
    u = u * u * (3 - 2 * u)
    out = keys[idx] + (keys[idx + 1] - keys[idx]) * u[:, None]

    def sway(amplitude, low=0.15, high=0.6):
        f = rng.uniform(low, high)
        return amplitude * np.sin(2 * np.pi * f * ft + rng.uniform(0, 2 * np.pi))

    beat = np.sin(2 * np.pi * rng.uniform(1.2, 2.0) * ft)
    out[:, P["head_yaw"]] += sway(0.1) - 0.45 * (out[:, P["yaw"]] + out[:, P["twist"]])
    out[:, P["head_pitch"]] += sway(0.05)
    out[:, P["head_roll"]] += sway(0.04)
    out[:, P["lean"]] += sway(0.02)
    for side in "rl":
        out[:, P[f"{side}_abd"]] += sway(0.04) + 0.5 * out[:, P["beat"]] * beat
        out[:, P[f"{side}_elbow"]] += sway(0.06) + out[:, P["beat"]] * beat
    return out


# --------------------------------------------------------------------------- kinematics


def _two_bone_ik(hip, target, l1, l2, pole):
    """Knee and (reachable) ankle for a leg from ``hip`` toward ``target``."""
    d_vec = target - hip
    d = np.linalg.norm(d_vec)
    reach = (l1 + l2) * 0.999
    direction = d_vec / max(d, 1e-9)
    if d > reach:
        target = hip + direction * reach
        d = reach
    a = (l1 * l1 - l2 * l2 + d * d) / (2 * d)
    h = np.sqrt(max(l1 * l1 - a * a, 0.0))
    bend = pole - direction * np.dot(pole, direction)
    bend = _unit(bend) if np.linalg.norm(bend) > 1e-6 else np.array([0.0, 0.0, -1.0])
    return hip + direction * a + bend * h, target


def _arm(shoulder, torso_rot, side, abd, flex, elbow, swivel, upper, fore):
    """Elbow, wrist and forearm direction (world) of one arm; side +1 = left (+x), -1 = right."""
    d_up = np.array([side * np.sin(abd), np.cos(abd) * np.cos(flex), -np.cos(abd) * np.sin(flex)])
    pole = np.cos(swivel) * np.array([0.0, 0.0, -1.0]) + np.sin(swivel) * np.array([-side, 0.0, 0.0])
    bend = pole - d_up * np.dot(pole, d_up)
    bend = _unit(bend) if np.linalg.norm(bend) > 1e-6 else np.array([0.0, -1.0, 0.0])
    d_fore = np.cos(elbow) * d_up + np.sin(elbow) * bend
    d_up_w, d_fore_w = torso_rot @ d_up, torso_rot @ d_fore
    elbow_pos = shoulder + upper * d_up_w
    wrist = elbow_pos + fore * d_fore_w
    return elbow_pos, wrist, d_fore_w


# Finger (MCP offset across the palm, MCP distance along it, segment lengths) in hand lengths.
_FINGERS = (
    (0.30, 0.50, (0.20, 0.14, 0.12)),   # index
    (0.10, 0.52, (0.22, 0.15, 0.12)),   # middle
    (-0.10, 0.50, (0.21, 0.14, 0.11)),  # ring
    (-0.28, 0.46, (0.17, 0.11, 0.10)),  # pinky
)


def _hand(wrist, along, side, roll, curl, point, length):
    """The 21 hand keypoints (OpenPose order) for a hand along ``along``."""
    n0 = np.array([-side, 0.0, 0.0])
    n0 = n0 - along * np.dot(n0, along)
    n0 = _unit(n0) if np.linalg.norm(n0) > 1e-6 else _unit(np.cross(along, [0.0, 0.0, 1.0]))
    normal = _rotate_about(n0, along, -side * roll)
    thumb_dir = side * np.cross(normal, along)
    pts = np.zeros((21, 3))
    pts[0] = wrist
    # thumb: 1..4
    base = wrist + length * (0.12 * along + 0.16 * thumb_dir)
    pts[1] = base
    d = _unit(0.6 * along + 0.8 * thumb_dir)
    c = 0.25 + 0.5 * min(curl, 1.0)
    for k, seg in enumerate((0.2, 0.15, 0.12)):
        d = _unit(np.cos(c) * d + np.sin(c) * normal * 0.8 + np.sin(c) * 0.2 * -thumb_dir)
        pts[2 + k] = pts[1 + k] + length * seg * d
    for f, (across, dist, segs) in enumerate(_FINGERS):
        mcp = wrist + length * (dist * along + across * 0.55 * thumb_dir)
        pts[5 + 4 * f] = mcp
        finger_curl = curl * (1 - point) if f == 0 else curl
        d = along
        for k, seg in enumerate(segs):
            angle = finger_curl * (0.5 + 0.3 * k)
            d = _unit(np.cos(angle) * d + np.sin(angle) * normal)
            pts[6 + 4 * f + k] = pts[5 + 4 * f + k] + length * seg * d
    return pts


def make_motion(character: Character, num_frames: int, seed: int, fps: float = FPS) -> Motion:
    """The 3D body of ``character`` over ``num_frames`` frames of procedural motion ``seed``."""
    params = motion_parameters(num_frames, seed, fps)
    ch = character
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A1]))
    jaw_phase = rng.uniform(0, 2 * np.pi, 2)
    ft = np.arange(num_frames) / fps
    jaw = np.clip(np.sin(2 * np.pi * 3.4 * ft + jaw_phase[0]) * np.sin(2 * np.pi * 0.45 * ft + jaw_phase[1]), 0, 1)
    leg = ch.thigh + ch.shin
    floor_y = leg * 0.985 + ch.ankle_height
    rx, ry, rz = ch.head_radii
    face_local = FACE_TEMPLATE * np.array([rx, ry, rz])
    hand_len = 0.1 * ch.height

    joints = np.zeros((num_frames, NUM_KEYPOINTS, 3))
    torso_r = np.zeros((num_frames, 3, 3))
    pelvis_r = np.zeros((num_frames, 3, 3))
    head_r = np.zeros((num_frames, 3, 3))
    pelvis_pos = np.zeros((num_frames, 3))
    foot_yaw = np.zeros((num_frames, 2))

    def home(i, side):
        q = params[min(i, num_frames - 1)]
        offset = rot_y(q[P["yaw"]]) @ np.array([side * ch.hip_half * 1.15, 0.0, 0.0])
        return np.array([q[P["x"]] + offset[0], q[P["z"]] + offset[2]]), q[P["yaw"]]

    step_frames = max(int(round(0.36 * fps)), 2)
    feet = [list(home(0, -1)), list(home(0, 1))]  # (xz, yaw) for right, left
    stepping: list = [None, None]
    for i in range(num_frames):
        q = params[i]
        # feet: plant, and step when the body has moved away from them
        lift = [0.0, 0.0]
        for k, side in enumerate((-1, 1)):
            if stepping[k] is None and stepping[1 - k] is None:
                target, target_yaw = home(i, side)
                if np.linalg.norm(target - feet[k][0]) > 0.1 or abs(target_yaw - feet[k][1]) > 0.3:
                    goal, goal_yaw = home(i + step_frames, side)
                    stepping[k] = (i, feet[k][0].copy(), feet[k][1], goal, goal_yaw)
            if stepping[k] is not None:
                start, xz0, yaw0, xz1, yaw1 = stepping[k]
                u = (i - start + 1) / step_frames
                s = u * u * (3 - 2 * u)
                feet[k] = [xz0 + (xz1 - xz0) * s, yaw0 + (yaw1 - yaw0) * s]
                lift[k] = 0.07 * ch.height * np.sin(np.pi * u) * min(1.0, np.linalg.norm(xz1 - xz0) / 0.15)
                if u >= 1:
                    stepping[k] = None
        yaw = q[P["yaw"]]
        rp = rot_y(yaw)
        pelvis = np.array([q[P["x"]], 0.0, q[P["z"]]]) + rp @ np.array([q[P["shift"]], 0.0, 0.0])
        pelvis[1] = abs(q[P["shift"]]) * 0.5 + 0.01 * ch.height * max(lift)
        rt = rot_y(yaw + q[P["twist"]]) @ rot_z(-q[P["shift"]] * 1.5) @ rot_x(q[P["lean"]])
        rh = rt @ rot_y(q[P["head_yaw"]]) @ rot_x(q[P["head_pitch"]]) @ rot_z(q[P["head_roll"]])
        neck = pelvis + rt @ np.array([0.0, -ch.torso_length, 0.0])
        head_centre = neck + rh @ np.array([0.0, -ch.neck_length - 0.45 * ry, -0.01 * ch.height])
        kp = joints[i]
        kp[BODY_INDEX["neck"]] = neck
        fwd = rp @ np.array([0.0, 0.0, -1.0])
        for side, prefix in ((-1, "r"), (1, "l")):
            shoulder = neck + rt @ np.array([side * ch.shoulder_half, 0.012 * ch.height, 0.0])
            elbow, wrist, along = _arm(
                shoulder, rt, side, q[P[f"{prefix}_abd"]], q[P[f"{prefix}_flex"]] + 0.0,
                max(q[P[f"{prefix}_elbow"]], 0.0), q[P[f"{prefix}_swivel"]], ch.upper_arm, ch.forearm,
            )
            kp[BODY_INDEX[f"{prefix}_shoulder"]] = shoulder
            kp[BODY_INDEX[f"{prefix}_elbow"]] = elbow
            kp[BODY_INDEX[f"{prefix}_wrist"]] = wrist
            hand = _hand(wrist, along, side, q[P[f"{prefix}_roll"]], q[P[f"{prefix}_curl"]], q[P[f"{prefix}_point"]], hand_len)
            kp[RIGHT_HAND if side < 0 else LEFT_HAND] = hand
            k = 0 if side < 0 else 1
            hip = pelvis + rp @ np.array([side * ch.hip_half, 0.0, 0.0])
            ankle_target = np.array([feet[k][0][0], floor_y - ch.ankle_height - lift[k], feet[k][0][1]])
            knee, ankle = _two_bone_ik(hip, ankle_target, ch.thigh, ch.shin, fwd)
            kp[BODY_INDEX[f"{prefix}_hip"]] = hip
            kp[BODY_INDEX[f"{prefix}_knee"]] = knee
            kp[BODY_INDEX[f"{prefix}_ankle"]] = ankle
            foot_yaw[i, k] = feet[k][1]
        face = head_centre + face_local @ rh.T
        jaw_drop = np.zeros(68)
        jaw_drop[[5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67]] = 0.09 * ry * jaw[i]
        face = face + np.outer(jaw_drop, rh[:, 1])
        kp[FACE] = face
        kp[BODY_INDEX["nose"]] = face[30]
        kp[BODY_INDEX["r_eye"]] = face[36:42].mean(0)
        kp[BODY_INDEX["l_eye"]] = face[42:48].mean(0)
        kp[BODY_INDEX["r_ear"]] = head_centre + rh @ np.array([-rx * 1.02, 0.05 * ry, 0.05 * rz])
        kp[BODY_INDEX["l_ear"]] = head_centre + rh @ np.array([rx * 1.02, 0.05 * ry, 0.05 * rz])
        torso_r[i], pelvis_r[i], head_r[i], pelvis_pos[i] = rt, rp, rh, pelvis
    _swing_arms(joints, pelvis_r, ch)
    return Motion(joints.astype(np.float32), torso_r, pelvis_r, head_r, pelvis_pos, foot_yaw, jaw, float(floor_y))


def _swing_arms(joints: np.ndarray, pelvis_r: np.ndarray, ch: Character) -> None:
    """Swing each arm with the opposite foot while stepping (rotates the arm about its shoulder)."""
    for prefix, other, hand in (("r", "l", RIGHT_HAND), ("l", "r", LEFT_HAND)):
        sh = BODY_INDEX[f"{prefix}_shoulder"]
        ankle_o = BODY_INDEX[f"{other}_ankle"]
        ankle_s = BODY_INDEX[f"{prefix}_ankle"]
        for i in range(joints.shape[0]):
            fwd = pelvis_r[i] @ np.array([0.0, 0.0, -1.0])
            lead = np.dot(joints[i, ankle_o] - joints[i, ankle_s], fwd)
            angle = float(np.clip(-1.6 * lead, -0.45, 0.45))  # positive angles swing backward
            if abs(angle) < 1e-3:
                continue
            axis = pelvis_r[i] @ np.array([1.0, 0.0, 0.0])
            idx = [BODY_INDEX[f"{prefix}_elbow"], BODY_INDEX[f"{prefix}_wrist"], *range(hand.start, hand.stop)]
            rel = joints[i, idx] - joints[i, sh]
            c, s = np.cos(angle), np.sin(angle)
            rotated = rel * c + np.cross(axis, rel) * s + np.outer(rel @ axis, axis) * (1 - c)
            joints[i, idx] = joints[i, sh] + rotated
