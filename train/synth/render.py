"""Rendering the synthetic world: depth-ordered, shaded, anti-aliased body parts with cv2.

Each part (limb capsules, the torso surface with its pattern and logo, head,
face, hair, shoes) is drawn back to front on a supersampled canvas with
``cv2.LINE_AA`` and the canvas is area-downsampled. The same parts are drawn
into a label map, which decides keypoint visibility: a keypoint is visible when
it is inside the frame, faces the camera, and the part on top at its pixel is
one of the parts it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.poses.track import BODY_INDEX, FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND

from .camera import CameraTrack
from .character import Character
from .motion import Motion, rot_y

SHIFT = 4
FIXED = 1 << SHIFT

# Part labels.
BACKGROUND, TORSO, PELVIS, NECK, HEAD, HAIR = 0, 1, 2, 3, 4, 5
UPPER_ARM, FOREARM, HAND, THIGH, SHIN, SHOE = (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17)

BACKDROP_WALLS = ((196, 204, 214), (214, 206, 190), (186, 206, 196), (170, 176, 190), (226, 222, 214), (120, 132, 148))
BACKDROP_STYLES = ("plain", "studio")


@dataclass(frozen=True)
class Backdrop:
    """A plain wall or a studio wall with a floor (colours RGB)."""

    style: str
    wall: tuple
    floor: tuple

    @staticmethod
    def random(rng: np.random.Generator) -> "Backdrop":
        wall = BACKDROP_WALLS[int(rng.integers(len(BACKDROP_WALLS)))]
        style = BACKDROP_STYLES[int(rng.integers(len(BACKDROP_STYLES)))]
        floor = tuple(int(c * 0.62) for c in wall)
        return Backdrop(style, wall, floor)


def _owners() -> list[tuple[int, ...]]:
    """The parts each keypoint belongs to (a keypoint is visible on any of them)."""
    owners: list[tuple[int, ...]] = [(HEAD,)] * NUM_KEYPOINTS
    b = BODY_INDEX
    owners[b["neck"]] = (TORSO, NECK)
    for k, side in enumerate("rl"):
        owners[b[f"{side}_shoulder"]] = (TORSO, UPPER_ARM[k])
        owners[b[f"{side}_elbow"]] = (UPPER_ARM[k], FOREARM[k])
        owners[b[f"{side}_wrist"]] = (FOREARM[k], HAND[k])
        owners[b[f"{side}_hip"]] = (TORSO, PELVIS, THIGH[k])
        owners[b[f"{side}_knee"]] = (THIGH[k], SHIN[k])
        owners[b[f"{side}_ankle"]] = (SHIN[k], SHOE[k])
    for k, hand in enumerate((RIGHT_HAND, LEFT_HAND)):
        for i in range(hand.start, hand.stop):
            owners[i] = (HAND[k], FOREARM[k]) if i == hand.start else (HAND[k],)
    return owners


OWNER_MASK = np.zeros((NUM_KEYPOINTS, 32), bool)
for _i, _parts in enumerate(_owners()):
    OWNER_MASK[_i, list(_parts)] = True
FACING_KEYPOINTS = np.r_[np.arange(FACE.start, FACE.stop), [BODY_INDEX["nose"], BODY_INDEX["r_eye"], BODY_INDEX["l_eye"]]]


def _shade(colour, factor: float) -> tuple:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


def _logo_outline(kind: str) -> np.ndarray:
    """Logo polygon in unit coordinates (x right, y down), radius about 1."""
    if kind in ("circle", "ring"):
        a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.15, 0.48)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if kind == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return 1.2 * np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "diamond":
        return np.array([[0, -1.2], [0.85, 0], [0, 1.2], [-0.85, 0]], float)
    raise ValueError(f"unknown logo {kind!r}")


class Renderer:
    """Draws one character. ``size`` is the output side in pixels; ``supersample`` the canvas factor."""

    def __init__(self, character: Character, size: int, supersample: int = 2):
        self.ch = character
        self.size = size
        self.ss = supersample
        self.canvas_size = size * supersample
        ch = character
        self.profile_v = np.array([0.0, 0.1, 0.35, 0.62, 0.85, 1.0, 1.08])
        sh = ch.shoulder_half
        self.profile_w = np.array([sh * 0.92, sh * 0.93, sh * 0.8, sh * (0.64 + 0.08 * ch.build), ch.hip_half * 2.0, ch.hip_half * 2.05, ch.hip_half * 1.7])
        self.profile_d = np.array([0.45, 0.55, 0.62, 0.6, 0.62, 0.6, 0.5]) * self.profile_w * 0.9 + 0.02 * ch.height
        self.logo = _logo_outline(ch.logo) if ch.logo != "none" else None

    # ------------------------------------------------------------------ geometry helpers

    def _fixed(self, uv: np.ndarray) -> np.ndarray:
        return np.round((uv * self.ss - 0.5) * FIXED).astype(np.int32)

    def _surface(self, centre_top, centre_bottom, rot, eye, vs, n_arc, y_extra=None, phi_range=None):
        """Points on the torso's elliptic-cylinder surface, ``(len(vs), n_arc, 3)``, over the camera-facing arc.

        Also returns the facing arc per row ``(len(vs), 2)`` in body angles (0 = chest front).
        """
        vs = np.asarray(vs, float)
        w = np.interp(vs, self.profile_v, self.profile_w)
        d = np.interp(vs, self.profile_v, self.profile_d)
        centres = centre_top[None] + (centre_bottom - centre_top)[None] * vs[:, None]
        local_eye = (eye[None] - centres) @ rot  # rows are rot.T @ (eye - c)
        phi_s = np.arctan2(w * local_eye[:, 2], d * local_eye[:, 0])
        mid = phi_s + np.pi / 2
        facing = (d * np.sin(mid)) * local_eye[:, 0] + (-w * np.cos(mid)) * local_eye[:, 2] > 0
        lo = np.where(facing, phi_s, phi_s - np.pi)
        lo = (lo + np.pi) % (2 * np.pi) - np.pi
        arc = np.stack([lo, lo + np.pi], 1)
        if phi_range is None:
            t = np.linspace(0, 1, n_arc)
            phi = arc[:, :1] + np.pi * t[None]
        else:
            phi = phi_range
        local = np.stack([w[:, None] * np.sin(phi), np.zeros_like(phi), -d[:, None] * np.cos(phi)], -1)
        if y_extra is not None:
            local[..., 1] += y_extra(phi)
        return centres[:, None, :] + local @ rot.T, arc

    # ------------------------------------------------------------------ background

    def background(self, backdrop: Backdrop, cam: CameraTrack, i: int, motion: Motion) -> np.ndarray:
        """The empty set at canvas resolution, ``(S, S, 3)`` uint8."""
        s = self.canvas_size
        rows = np.linspace(0, 1, s)[:, None]
        wall = np.array(backdrop.wall, float)
        column = wall[None] * (1.04 - 0.1 * rows)
        if backdrop.style == "studio":
            eye = cam.position(i)
            far = np.array([[eye[0], motion.floor_y, motion.pelvis_pos[0, 2] + 2.5]])
            cam_pts = far @ cam.R[i].T + cam.t[i]
            horizon = (cam_pts[0, 1] / max(cam_pts[0, 2], 1e-3) * cam.K[i, 1, 1] + cam.K[i, 1, 2]) / self.size
            floor = np.array(backdrop.floor, float)
            below = rows[:, 0] > horizon
            depth = np.clip((rows[:, 0] - horizon) / max(1 - horizon, 1e-3), 0, 1)[:, None]
            column = np.where(below[:, None], floor[None] * (1.08 - 0.22 * depth), column)
        column = np.clip(column, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (s, s, 3)))

    # ------------------------------------------------------------------ the frame

    def render(self, motion: Motion, cam: CameraTrack, i: int, backdrop: Backdrop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``i``: image ``(size, size, 3)`` uint8 RGB, keypoints ``(128, 3)`` (normalised x, y, visibility), in-frame ``(128,)`` bool."""
        canvas = self.background(backdrop, cam, i, motion)
        labels = np.zeros(canvas.shape[:2], np.uint8)
        K, R, t = cam.K[i], cam.R[i], cam.t[i]
        eye = cam.position(i)
        focal = K[0, 0]
        joints = motion.joints[i].astype(float)

        def project(points):
            c = points.reshape(-1, 3) @ R.T + t
            z = np.maximum(c[:, 2], 1e-3)
            uv = c[:, :2] / z[:, None] * focal + K[:2, 2]
            return uv.reshape(points.shape[:-1] + (2,)), z.reshape(points.shape[:-1])

        kp_uv, kp_z = project(joints)
        items: list[tuple[float, object]] = []
        ch = self.ch
        ss = self.ss
        outline_px = max(1, ss // 2 + (1 if ss > 2 else 0))

        def px(radius, z):  # world radius -> canvas pixels
            return radius * focal / max(z, 1e-3) * ss

        def capsule(a, b, radius, colour, label, shade=1.0):
            (uv, z) = project(np.stack([a, b]))
            pts = self._fixed(uv)
            r = px(radius, z.mean())
            fill = max(1, int(round(2 * r)))
            col = _shade(colour, shade)

            def draw():
                cv2.line(canvas, tuple(pts[0]), tuple(pts[1]), _shade(col, 0.62), fill + 2 * outline_px, cv2.LINE_AA, SHIFT)
                cv2.line(canvas, tuple(pts[0]), tuple(pts[1]), col, fill, cv2.LINE_AA, SHIFT)
                cv2.line(labels, tuple(pts[0]), tuple(pts[1]), label, fill, cv2.LINE_8, SHIFT)
            return z.mean(), draw

        def polygon(points3d, colour, label, outline=True):
            uv, z = project(points3d)
            pts = self._fixed(uv)

            def draw():
                cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA, SHIFT)
                if outline:
                    cv2.polylines(canvas, [pts], True, _shade(colour, 0.62), outline_px, cv2.LINE_AA, SHIFT)
                if label is not None:
                    cv2.fillPoly(labels, [pts], label, cv2.LINE_8, SHIFT)
            return z.mean(), draw

        b = BODY_INDEX
        neck = joints[b["neck"]]
        pelvis = motion.pelvis_pos[i]
        rt, rp, rh = motion.torso[i], motion.pelvis[i], motion.head[i]
        torso_z = project(((neck + pelvis) / 2)[None])[1][0]
        r_limb = ch.limb_radius

        # ---- legs and shoes
        lower_skin = ch.lower == "shorts"
        for k, side in enumerate("rl"):
            hip, knee, ankle = joints[b[f"{side}_hip"]], joints[b[f"{side}_knee"]], joints[b[f"{side}_ankle"]]
            z_leg = project(knee[None])[1][0]
            shade = 1.0 - float(np.clip((z_leg - torso_z) * 1.2, 0, 0.18))
            z, draw = capsule(hip, knee, r_limb * 1.45, ch.lower_colour, THIGH[k], shade)
            items.append((z + 0.06, draw))
            if lower_skin:
                z, draw = capsule(knee, ankle, r_limb * 0.95, ch.skin, SHIN[k], shade)
                items.append((z + 0.02, draw))
                z, draw = capsule(hip, hip + (knee - hip) * 0.72, r_limb * 1.55, ch.lower_colour, THIGH[k], shade)
                items.append((z + 0.0599, draw))
            else:
                z, draw = capsule(knee, ankle, r_limb * 1.2, ch.lower_colour, SHIN[k], shade)
                items.append((z + 0.02, draw))
            forward = rot_y(motion.foot_yaw[i, k]) @ np.array([0.0, 0.0, -1.0])
            down = np.array([0.0, 1.0, 0.0])
            heel = ankle - forward * 0.025 * ch.height + down * 0.018 * ch.height
            toe = ankle + forward * 0.085 * ch.height + down * 0.028 * ch.height
            z, draw = capsule(heel, toe, 0.026 * ch.height, ch.shoe_colour, SHOE[k], shade)
            items.append((z + 0.01, draw))

        # ---- torso: trousers top, shirt, pattern, logo
        torso_items = []
        pel_rows, _ = self._surface(neck, pelvis, rp, eye, [0.72, 1.0, 1.08], 9)
        pel_poly = np.concatenate([pel_rows[0], pel_rows[1, ::-1][:1], pel_rows[2, ::-1], pel_rows[1, :1]])
        pel_poly = np.concatenate([pel_rows[0], pel_rows[2, ::-1]])
        torso_items.append(polygon(pel_poly, ch.lower_colour, PELVIS)[1])

        neckline = lambda phi: -0.03 * ch.height * np.cos(np.clip(phi, -np.pi / 2, np.pi / 2)) ** 2  # noqa: E731
        shirt_bottom = 0.94
        top_row, arc_top = self._surface(neck, pelvis, rt, eye, [0.0], 11, y_extra=neckline)
        rows, arcs = self._surface(neck, pelvis, rt, eye, [0.1, 0.35, 0.62, 0.85, shirt_bottom], 11)
        shirt = np.concatenate([top_row[0], rows[:, -1], rows[-1, ::-1], rows[::-1, 0]])
        torso_items.append(polygon(shirt, ch.shirt_colour, TORSO)[1])
        torso_items += self._pattern(neck, pelvis, rt, eye, project, canvas, labels, shirt_bottom)
        torso_items += self._logo(neck, pelvis, rt, eye, project, canvas, labels)

        def draw_torso():
            for draw in torso_items:
                draw()
        items.append((torso_z, draw_torso))

        # ---- neck and head
        head_centre = joints[b["neck"]] + rh @ np.array([0.0, -ch.neck_length - 0.45 * ch.head_radii[1], -0.01 * ch.height])
        z, draw = capsule(neck + rt @ np.array([0, -0.01 * ch.height, 0.005 * ch.height]), head_centre + rh @ np.array([0, 0.4 * ch.head_radii[1], 0.2 * ch.head_radii[2]]),
                          0.034 * ch.height, ch.skin, NECK)
        items.append((torso_z + 0.001, draw))
        head_draws, back_hair = self._head(joints, head_centre, rh, eye, project, canvas, labels, focal, outline_px)
        if back_hair is not None:
            items.append((torso_z + 0.002, back_hair))
        items.append((torso_z - 0.3, head_draws))

        # ---- arms and hands
        for k, side in enumerate("rl"):
            shoulder, elbow, wrist = joints[b[f"{side}_shoulder"]], joints[b[f"{side}_elbow"]], joints[b[f"{side}_wrist"]]
            z_arm = project(elbow[None])[1][0]
            shade = 1.0 - float(np.clip((z_arm - torso_z) * 1.2, 0, 0.18))
            sleeve = ch.shirt_colour
            fore_colour = sleeve if ch.sleeves == "long" else ch.skin
            if ch.sleeves == "long":
                z, draw = capsule(shoulder, elbow, r_limb * 1.15, sleeve, UPPER_ARM[k], shade)
                items.append((z - 0.03, draw))
            else:
                z, draw = capsule(shoulder, elbow, r_limb * 0.95, ch.skin, UPPER_ARM[k], shade)
                z2, draw2 = capsule(shoulder, shoulder + (elbow - shoulder) * 0.55, r_limb * 1.3, sleeve, UPPER_ARM[k], shade)
                items.append((z - 0.03, lambda d1=draw, d2=draw2: (d1(), d2())))
            z, draw = capsule(elbow, wrist, r_limb * (1.05 if ch.sleeves == "long" else 0.85), fore_colour, FOREARM[k], shade)
            items.append((z - 0.031, draw))
            hand = joints[RIGHT_HAND if side == "r" else LEFT_HAND]
            items.append(self._hand(hand, project, canvas, labels, HAND[k], shade, focal))

        for _, draw in sorted(items, key=lambda it: -it[0]):
            draw()

        image = cv2.resize(canvas, (self.size, self.size), interpolation=cv2.INTER_AREA) if ss > 1 else canvas
        keypoints, in_frame = self._visibility(kp_uv, joints, labels, eye, head_centre)
        return image, keypoints, in_frame

    # ------------------------------------------------------------------ parts

    def _pattern(self, neck, pelvis, rot, eye, project, canvas, labels, bottom):
        ch = self.ch
        if ch.pattern == "plain":
            return []
        colour = ch.pattern_colour
        polys = []
        if ch.pattern == "stripes":
            n = ch.pattern_count
            pitch = (bottom - 0.1) / n
            for k in range(n):
                v0 = 0.1 + k * pitch + pitch * 0.3
                v1 = v0 + pitch * 0.45
                rows, _ = self._surface(neck, pelvis, rot, eye, [v0, v1], 9)
                polys.append(np.concatenate([rows[0], rows[1, ::-1]]))
        elif ch.pattern == "checks":
            n = ch.pattern_count + 1
            edges = np.linspace(0.0, bottom, n + 1)
            cols = 2 * n
            col_edges = np.linspace(-np.pi, np.pi, cols + 1)
            _, arcs = self._surface(neck, pelvis, rot, eye, edges, 2)
            for r in range(n):
                lo, hi = arcs[r]
                for c in range(cols):
                    if (r + c) % 2:
                        continue
                    a0, a1 = col_edges[c], col_edges[c + 1]
                    # body angles are periodic; shift the cell next to the facing arc
                    shift = 2 * np.pi * np.round(((a0 + a1) / 2 - (lo + hi) / 2) / (2 * np.pi))
                    a0, a1 = max(a0 - shift, lo), min(a1 - shift, hi)
                    if a1 - a0 < 1e-3:
                        continue
                    phi = np.linspace(a0, a1, 3)[None].repeat(2, 0)
                    rows, _ = self._surface(neck, pelvis, rot, eye, edges[r:r + 2] + [0.0, 0.0], 3, phi_range=phi)
                    polys.append(np.concatenate([rows[0], rows[1, ::-1]]))
        if not polys:
            return []
        fixed = [self._fixed(project(p)[0]) for p in polys]

        def draw():
            cv2.fillPoly(canvas, fixed, colour, cv2.LINE_AA, SHIFT)
        return [draw]

    def _logo(self, neck, pelvis, rot, eye, project, canvas, labels):
        ch = self.ch
        if self.logo is None:
            return []
        v_centre = 0.3
        _, arcs = self._surface(neck, pelvis, rot, eye, [v_centre], 2)
        lo, hi = arcs[0]
        w = np.interp(v_centre, self.profile_v, self.profile_w)
        radius = 0.032 * ch.height
        phis = self.logo[:, 0] * radius / w
        if phis.min() < lo + 0.25 or phis.max() > hi - 0.25:
            return []  # the chest faces away
        vs = v_centre + self.logo[:, 1] * radius / ch.torso_length
        pts = np.stack([self._surface(neck, pelvis, rot, eye, [v], 1, phi_range=np.array([[p]]))[0][0, 0] for v, p in zip(vs, phis)])
        uv = project(pts)[0]
        fixed = self._fixed(uv)
        colour = ch.logo_colour

        def draw():
            cv2.fillPoly(canvas, [fixed], colour, cv2.LINE_AA, SHIFT)
            if ch.logo == "ring":
                centre = uv.mean(0)
                inner = self._fixed(centre + (uv - centre) * 0.5)
                cv2.fillPoly(canvas, [inner], ch.shirt_colour, cv2.LINE_AA, SHIFT)
        return [draw]

    def _hand(self, hand, project, canvas, labels, label, shade, focal):
        ch = self.ch
        uv, z = project(hand)
        pts = self._fixed(uv)
        colour = _shade(ch.skin, shade)
        dark = _shade(colour, 0.62)
        finger = max(1, int(round(0.016 * ch.height * focal / z.mean() * self.ss)))
        palm = pts[[0, 1, 5, 9, 13, 17]]
        hull = cv2.convexHull(palm)
        chains = [pts[[1, 2, 3, 4]]] + [pts[[5 + 4 * f, 6 + 4 * f, 7 + 4 * f, 8 + 4 * f]] for f in range(4)]

        def draw():
            cv2.polylines(canvas, chains, False, dark, finger + 2, cv2.LINE_AA, SHIFT)
            cv2.fillConvexPoly(canvas, hull, dark, cv2.LINE_AA, SHIFT)
            cv2.polylines(canvas, chains, False, colour, finger, cv2.LINE_AA, SHIFT)
            cv2.fillConvexPoly(canvas, hull, colour, cv2.LINE_AA, SHIFT)
            cv2.polylines(labels, chains, False, label, finger, cv2.LINE_8, SHIFT)
            cv2.fillConvexPoly(labels, hull, label, cv2.LINE_8, SHIFT)
        return z.mean() - 0.035, draw

    def _head(self, joints, centre, rh, eye, project, canvas, labels, focal, outline_px):
        """Draw calls for the head (ears, skull, face, front hair) and for the hair behind the body."""
        ch = self.ch
        rx, ry, rz = ch.head_radii
        radii = np.array([rx, ry, rz])
        view = rh.T @ (eye - centre)
        view /= np.linalg.norm(view)
        e = view / radii
        e /= np.linalg.norm(e)
        a = np.cross(e, [0.0, 1.0, 0.0] if abs(e[1]) < 0.9 else [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        bvec = np.cross(e, a)
        ang = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        unit = np.cos(ang)[:, None] * a + np.sin(ang)[:, None] * bvec

        def outline(scale=1.0, lift=0.0, jaw=True):
            local = unit * radii * scale
            if jaw:
                local[:, 0] *= 1 - 0.2 * np.clip(local[:, 1] / ry, 0, 1)
            local[:, 1] -= lift * ry
            return centre + local @ rh.T

        skull = outline()
        uv_skull, z_skull = project(skull)
        head_px = (uv_skull.max(0) - uv_skull.min(0)).max() * self.ss
        fixed_skull = self._fixed(uv_skull)
        skin = ch.skin
        dark = _shade(skin, 0.62)
        hair = ch.hair_colour
        hair_dark = _shade(hair, 0.7)
        draws = []
        back = None

        def fill(points3d, colour, label, line=None):
            pts = self._fixed(project(points3d)[0])
            hull = cv2.convexHull(pts)

            def draw():
                cv2.fillConvexPoly(canvas, hull, colour, cv2.LINE_AA, SHIFT)
                if line is not None:
                    cv2.polylines(canvas, [hull], True, line, outline_px, cv2.LINE_AA, SHIFT)
                if label is not None:
                    cv2.fillConvexPoly(labels, hull, label, cv2.LINE_8, SHIFT)
            return draw

        style = ch.hair_style
        if style == "long":
            local = np.concatenate([unit * radii * 1.12, [[-rx * 1.2, ry * 1.9, rz * 0.4], [rx * 1.2, ry * 1.9, rz * 0.4]]])
            back = fill(centre + local @ rh.T, hair, HAIR, hair_dark)
        elif style == "curly":
            blobs = outline(1.12, lift=0.12, jaw=False)
            uvb, zb = project(blobs)
            keep = uvb[:, 1] < project(centre[None])[0][0, 1] + 0.25 * (uvb[:, 1].max() - uvb[:, 1].min())
            fb = self._fixed(uvb[keep])
            r_blob = max(1, int(round(0.36 * rx * focal / zb.mean() * self.ss * FIXED)))

            def curls():
                for p in fb:
                    cv2.circle(canvas, tuple(p), r_blob + FIXED * outline_px, hair_dark, -1, cv2.LINE_AA, SHIFT)
                for p in fb:
                    cv2.circle(canvas, tuple(p), r_blob, hair, -1, cv2.LINE_AA, SHIFT)
                    cv2.circle(labels, tuple(p), r_blob, HAIR, -1, cv2.LINE_8, SHIFT)
            draws.append(curls)
        elif style == "bun":
            bun = centre + rh @ np.array([0.0, -1.05 * ry, 0.35 * rz])
            a2 = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            ring = np.stack([np.cos(a2), np.sin(a2), np.zeros(12)], 1) * 0.48 * rx
            draws.append(fill(bun + ring @ rh.T, hair, HAIR, hair_dark))
        elif style == "ponytail":
            tail = [centre + rh @ np.array([0.0, -0.4 * ry, 0.95 * rz]), centre + rh @ np.array([0.0, 1.5 * ry, 1.3 * rz])]
            uvt, zt = project(np.stack(tail))
            ft = self._fixed(uvt)
            width = max(1, int(round(0.55 * rx * focal / zt.mean() * self.ss)))
            back = lambda: (cv2.line(canvas, tuple(ft[0]), tuple(ft[1]), hair_dark, width + 2 * outline_px, cv2.LINE_AA, SHIFT),  # noqa: E731
                            cv2.line(canvas, tuple(ft[0]), tuple(ft[1]), hair, width, cv2.LINE_AA, SHIFT),
                            cv2.line(labels, tuple(ft[0]), tuple(ft[1]), HAIR, width, cv2.LINE_8, SHIFT))

        # ears
        for side in (-1, 1):
            ear_c = centre + rh @ np.array([side * rx * 0.98, 0.05 * ry, 0.05 * rz])
            a3 = np.linspace(0, 2 * np.pi, 10, endpoint=False)
            ring = np.stack([np.zeros(10), np.sin(a3) * 0.24 * ry, np.cos(a3) * 0.14 * rz], 1) + [side * 0.05 * rx, 0, 0]
            draws.append(fill(ear_c + ring @ rh.T, skin, HEAD, dark))

        def skull_draw():
            cv2.fillPoly(canvas, [fixed_skull], skin, cv2.LINE_AA, SHIFT)
            cv2.polylines(canvas, [fixed_skull], True, dark, outline_px, cv2.LINE_AA, SHIFT)
            cv2.fillPoly(labels, [fixed_skull], HEAD, cv2.LINE_8, SHIFT)
        draws.append(skull_draw)

        face = joints[FACE]
        face_uv = project(face)[0]
        fp = self._fixed(face_uv)
        scale = focal / z_skull.mean() * self.ss  # canvas pixels per metre at the head

        def thick(metres):
            return max(1, int(round(metres * scale)))

        detailed = head_px > 22 * self.ss  # below ~22 output pixels eyes are dots
        if ch.beard:
            beard_idx = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 35, 33, 31]
            beard_pts = fp[beard_idx]
            draws.append(lambda: cv2.fillPoly(canvas, [beard_pts], hair, cv2.LINE_AA, SHIFT))
        if detailed:
            def face_draw():
                whites = (250, 250, 250)
                for eye_idx in (slice(36, 42), slice(42, 48)):
                    pts = fp[eye_idx]
                    cv2.fillPoly(canvas, [pts], whites, cv2.LINE_AA, SHIFT)
                    c = pts.mean(0).astype(np.int32)
                    r = max(FIXED, int((pts[:, 1].max() - pts[:, 1].min()) * 0.36))
                    cv2.circle(canvas, tuple(c), r, ch.eye_colour, -1, cv2.LINE_AA, SHIFT)
                    cv2.circle(canvas, tuple(c), max(FIXED // 2, r // 2), (15, 15, 15), -1, cv2.LINE_AA, SHIFT)
                    cv2.polylines(canvas, [pts[:4]], False, (30, 25, 25), thick(0.0025 * ch.height), cv2.LINE_AA, SHIFT)
                brow = hair if ch.hair_style != "bald" else (60, 45, 35)
                brow_w = thick(0.004 * ch.height * ch.brow_weight)
                cv2.polylines(canvas, [fp[17:22], fp[22:27]], False, brow, brow_w, cv2.LINE_AA, SHIFT)
                cv2.polylines(canvas, [fp[[27, 28, 29, 30]], fp[31:36]], False, dark, thick(0.002 * ch.height), cv2.LINE_AA, SHIFT)
                cv2.fillPoly(canvas, [fp[48:60]], ch.lip_colour, cv2.LINE_AA, SHIFT)
                if np.abs(face[66] - face[62]).sum() > 0.004 * ch.height:
                    cv2.fillPoly(canvas, [fp[60:68]], (70, 20, 25), cv2.LINE_AA, SHIFT)
            draws.append(face_draw)
        elif head_px > 5 * self.ss:
            def face_draw_small():  # a hint of eyes and mouth where the face is a few pixels wide
                for eye_idx in (slice(36, 42), slice(42, 48)):
                    c = fp[eye_idx].mean(0).astype(np.int32)
                    cv2.circle(canvas, tuple(c), FIXED // 2, (40, 30, 30), -1, cv2.LINE_AA, SHIFT)
                cv2.fillPoly(canvas, [fp[48:60]], ch.lip_colour, cv2.LINE_AA, SHIFT)
            draws.append(face_draw_small)

        # front hair (cap with a fringe)
        if style != "bald":
            cap_scale = 1.1 if style != "curly" else 1.16
            top = outline(cap_scale, jaw=False)
            top_local = (top - centre) @ rh
            cap = top[top_local[:, 1] < -0.05 * ry]
            xs = np.linspace(-1, 1, 9)
            fringe_y = -0.42 + 0.1 * np.cos(xs * np.pi / 2) if style != "curly" else -0.5 + 0.0 * xs
            fr_local = np.stack([xs * rx * 1.06, fringe_y * ry, -np.sqrt(np.clip(1 - (xs * 1.0) ** 2 - (fringe_y * 0.8) ** 2, 0.02, 1)) * rz * 1.06], 1)
            front = np.concatenate([cap, centre + fr_local @ rh.T])
            view_dot = (rh @ np.array([0, 0, -1.0])) @ (eye - centre)
            if view_dot > 0:
                draws.append(fill(front, hair, HAIR, hair_dark))
            else:
                draws.append(fill(outline(cap_scale, jaw=False), hair, HAIR, hair_dark))
        if ch.glasses != "none" and detailed:
            frame_w = thick(0.004 * ch.height)
            lenses = []
            for eye_idx in (slice(36, 42), slice(42, 48)):
                c_local = (face[eye_idx].mean(0) - centre) @ rh
                if ch.glasses == "round":
                    a4 = np.linspace(0, 2 * np.pi, 14, endpoint=False)
                    ring = np.stack([np.cos(a4) * 0.3 * rx, np.sin(a4) * 0.3 * rx, np.zeros(14)], 1)
                else:
                    ring = np.array([[-0.3, -0.2, 0], [0.3, -0.2, 0], [0.3, 0.2, 0], [-0.3, 0.2, 0]]) * [rx, ry, 0]
                lenses.append(self._fixed(project(centre + (c_local + ring - [0, 0, 0.1 * rz]) @ rh.T)[0]))
            bridge = self._fixed(project(centre + np.array([[-0.12 * rx, -0.17 * ry, -1.02 * rz], [0.12 * rx, -0.17 * ry, -1.02 * rz]]) @ rh.T)[0])
            colour = ch.glasses_colour
            draws.append(lambda: (cv2.polylines(canvas, lenses, True, colour, frame_w, cv2.LINE_AA, SHIFT),
                                  cv2.polylines(canvas, [bridge], False, colour, frame_w, cv2.LINE_AA, SHIFT)))

        def head_all():
            for draw in draws:
                draw()
        return head_all, back

    # ------------------------------------------------------------------ visibility

    def _visibility(self, uv, joints, labels, eye, head_centre):
        size = self.size
        in_frame = (uv[:, 0] >= 0) & (uv[:, 0] < size) & (uv[:, 1] >= 0) & (uv[:, 1] < size)
        cell = np.clip(np.floor(uv).astype(int), 0, size - 1)
        sample = cell * self.ss + self.ss // 2
        on_top = labels[sample[:, 1], sample[:, 0]]
        visible = in_frame & OWNER_MASK[np.arange(NUM_KEYPOINTS), on_top]
        normal = joints[FACING_KEYPOINTS] - head_centre
        towards = eye[None] - joints[FACING_KEYPOINTS]
        visible[FACING_KEYPOINTS] &= np.einsum("ij,ij->i", normal, towards) > 0
        keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        keypoints[:, :2] = uv / size
        keypoints[:, 2] = visible
        return keypoints, in_frame
