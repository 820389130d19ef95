"""Pictures the studio shows: reference cards, the skeleton strip, the camera scrubber, the curve plot.

Pure numpy/OpenCV/PIL functions of engine objects; fast enough to run on every edit.
"""

from __future__ import annotations

import base64

import numpy as np

from engine.animate import Reference
from engine.camera import CameraTimeline, apply_camera, camera_curves
from engine.poses import BODY, PoseTrack, render_pose
from engine.poses.render import BODY_COLORS, LIMBS

BACKGROUND = (24, 26, 33)
ACCENT = (255, 138, 61)      # keyframes, zoom
CUT = (240, 70, 90)          # cuts
PAN_X = (90, 190, 255)
PAN_Y = (140, 230, 140)
YAW = (200, 140, 255)
GRID = (52, 56, 68)
TEXT = (220, 224, 235)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _blank(image: np.ndarray) -> np.ndarray:
    """Where an RGB image is black (``image.max(axis=2) == 0``, ten times faster: no reduction over the last axis)."""
    return (image[..., 0] | image[..., 1] | image[..., 2]) == 0


def _fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


def _label(image: np.ndarray, text: str, colour=(255, 255, 255), background=(0, 0, 0), corner: str = "bl",
           line: int = 0) -> np.ndarray:
    import cv2

    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 400)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > out.shape[1] - 16:  # shrink long labels to fit the picture
        scale *= (out.shape[1] - 16) / tw
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    pad = 5
    x = pad if corner.endswith("l") else out.shape[1] - tw - 3 * pad
    y = out.shape[0] - pad if corner.startswith("b") else th + 3 * pad
    y += (-1 if corner.startswith("b") else 1) * line * (th + 3 * pad + base)
    cv2.rectangle(out, (x - pad, y - th - pad - base // 2), (x + tw + pad, y + pad), background, -1)
    cv2.putText(out, text, (x, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out


def reference_card(reference: Reference, warning: str | None = None, max_side: int = 384) -> np.ndarray:
    """The photo with its skeleton drawn over it and its shot scale (and any warning) labelled."""
    h, w = reference.image.shape[:2]
    width, height = _fit_size(w, h, max_side)
    photo = _resize(reference.image, width, height)
    skeleton = render_pose(reference.keypoints, width, height, face=False)
    mask = skeleton.max(axis=2, keepdims=True) > 0
    card = np.where(mask, (0.25 * photo + 0.75 * skeleton).astype(np.uint8), photo)
    # labels at the top: the gallery's captions cover the bottom of each picture
    card = _label(card, reference.shot, background=(40, 40, 40), corner="tl")
    if warning:
        card = _label(card, "! " + warning, colour=(0, 0, 0), background=(255, 200, 60), corner="tl", line=1)
    return card


def skeleton_strip(track: PoseTrack, thumbs: int = 24, height: int = 64) -> np.ndarray:
    """Skeleton thumbnails evenly along the frame axis, side by side: ``(height, thumbs * w, 3)``."""
    thumbs = max(1, min(thumbs, len(track)))
    w = max(8, round(height * track.width / track.height))
    frames = np.linspace(0, len(track) - 1, thumbs).round().astype(int)
    tiles = []
    for f in frames:
        big = render_pose(track.keypoints[f], w * 3, height * 3, face=False, hands=False)  # draw big, shrink: thin lines
        tile = _resize(big, w, height)
        tile[_blank(tile)] = BACKGROUND
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def data_url(image: np.ndarray, quality: int = 80) -> str:
    import cv2

    ok, buffer = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def view_rectangle(track: PoseTrack, timeline: CameraTimeline, zoom: float, pan_x: float, pan_y: float) -> tuple[float, float, float, float]:
    """The part of the source frame the camera sees (pixels: left, top, right, bottom), per engine.camera's model."""
    out_w, out_h = timeline.output_size(track)
    base = min(out_w / track.width, out_h / track.height)
    view_w, view_h = out_w / (zoom * base), out_h / (zoom * base)
    cx, cy = (0.5 + pan_x) * track.width, (0.5 + pan_y) * track.height
    return cx - view_w / 2, cy - view_h / 2, cx + view_w / 2, cy + view_h / 2


def playback_data(track: PoseTrack, timeline: CameraTimeline, curves: np.ndarray, seen: PoseTrack,
                  shots: list[str] | None = None, canvas: tuple[int, int] = (560, 210), threshold: float = 0.3,
                  sprite: dict | None = None) -> dict:
    """What the timeline's player draws per frame (JSON-ready, coordinates in thousandths, -1 = not visible).

    ``source``: the body joints in the source frame; ``rect``: the camera's view there (left, top, right,
    bottom); ``seen``: the joints as the camera frames them; ``curves``: zoom, pan x, pan y, yaw; ``sprite``: the
    photos warped into the source poses (:func:`warp_sprite`), drawn under the skeletons when there are photos.
    """
    def joints(keypoints: np.ndarray) -> list[list[int]]:
        body = keypoints[:, BODY]
        xy = np.round(body[..., :2] * 1000).astype(int)
        xy[body[..., 2] <= threshold] = -1
        return xy.reshape(len(body), -1).tolist()

    zoom, pan_x, pan_y = curves[:, 0], curves[:, 1], curves[:, 2]
    left, top, right, bottom = view_rectangle(track, timeline, zoom, pan_x, pan_y)
    rect = np.stack([left / track.width, top / track.height, right / track.width, bottom / track.height], axis=1)
    out_w, out_h = seen.width, seen.height
    return {
        "sw": track.width, "sh": track.height, "ow": out_w, "oh": out_h, "cw": canvas[0], "ch": canvas[1],
        "limbs": LIMBS.tolist(), "colors": [f"rgb({r},{g},{b})" for r, g, b in BODY_COLORS[: len(LIMBS)]],
        "source": joints(track.keypoints), "seen": joints(seen.keypoints),
        "rect": np.round(rect * 1000).astype(int).tolist(), "curves": np.round(curves, 3).tolist(),
        "shots": shots, "sprite": sprite,
    }


def camera_preview(track: PoseTrack, timeline: CameraTimeline, frame: int, size: int = 320,
                   curves: np.ndarray | None = None, seen: PoseTrack | None = None) -> np.ndarray:
    """Side by side at ``frame``: the source pose with the camera's frame rectangle | what the camera sees."""
    import cv2

    if curves is None:
        curves, _ = camera_curves(timeline, track)
    if seen is None:
        seen = apply_camera(track, timeline)
    zoom, pan_x, pan_y, yaw = curves[frame]
    sw, sh = _fit_size(track.width, track.height, size)
    source = render_pose(track.keypoints[frame], sw, sh, face=False)
    source[_blank(source)] = BACKGROUND
    left, top, right, bottom = view_rectangle(track, timeline, zoom, pan_x, pan_y)
    sx, sy = sw / track.width, sh / track.height
    cv2.rectangle(source, (round(left * sx), round(top * sy)), (round(right * sx), round(bottom * sy)), ACCENT, 2, cv2.LINE_AA)
    source = _label(source, f"source  f{frame}", background=(45, 48, 58))
    ow, oh = _fit_size(seen.width, seen.height, size)
    view = render_pose(seen.keypoints[frame], ow, oh, face=False)
    view[_blank(view)] = (12, 12, 16)
    cv2.rectangle(view, (0, 0), (ow - 1, oh - 1), ACCENT, 2)
    view = _label(view, f"camera  {zoom:.2f}x  pan {pan_x:+.2f},{pan_y:+.2f}" + (f"  yaw {yaw:+.0f}" if yaw else ""),
                  background=(45, 48, 58))
    height = max(sh, oh)
    pad = lambda im: np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0)), constant_values=BACKGROUND[0])  # noqa: E731
    gap = np.full((height, 12, 3), BACKGROUND, np.uint8)
    return np.concatenate([pad(source), gap, pad(view)], axis=1)


def curve_plot(curves: np.ndarray, cut_frames: list[int], key_frames: list[int], frame: int,
               width: int = 720, height: int = 170) -> np.ndarray:
    """Zoom (orange, left scale), pan x/y (blue/green, right scale) and yaw (violet, its own ± scale named in the
    legend) over frames; cuts as red lines."""
    from PIL import Image, ImageDraw

    n = len(curves)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 40, width - 40, 10, height - 20
    x_of = lambda f: left + (right - left) * (f / max(n - 1, 1))  # noqa: E731
    zoom = curves[:, 0]
    z_lo, z_hi = min(1.0, float(zoom.min())), max(1.0, float(zoom.max())) * 1.05
    z_of = lambda z: bottom - (bottom - top) * (z - z_lo) / max(z_hi - z_lo, 1e-6)  # noqa: E731
    p_lim = max(0.25, float(np.abs(curves[:, 1:3]).max()) * 1.1)
    p_of = lambda p: bottom - (bottom - top) * (p + p_lim) / (2 * p_lim)  # noqa: E731
    y_lim = max(45.0, float(np.abs(curves[:, 3]).max()) * 1.1)  # yaw in degrees, its own scale
    y_of = lambda y: bottom - (bottom - top) * (y + y_lim) / (2 * y_lim)  # noqa: E731
    for g in range(5):
        y = top + (bottom - top) * g / 4
        draw.line([(left, y), (right, y)], fill=GRID)
    draw.line([(left, p_of(0)), (right, p_of(0))], fill=(70, 76, 92))
    for f in cut_frames:
        draw.line([(x_of(f), top), (x_of(f), bottom)], fill=CUT, width=2)
    for f in key_frames:
        draw.polygon([(x_of(f), bottom + 2), (x_of(f) - 4, bottom + 8), (x_of(f) + 4, bottom + 8)], fill=ACCENT)
    xs = [x_of(f) for f in range(n)]
    has_yaw = bool(np.any(curves[:, 3] != 0))
    lines = [(curves[:, 1], p_of, PAN_X), (curves[:, 2], p_of, PAN_Y)] + ([(curves[:, 3], y_of, YAW)] if has_yaw else [])
    for values, of, colour in lines + [(zoom, z_of, ACCENT)]:
        points = list(zip(xs, (of(v) for v in values)))
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
    draw.line([(x_of(frame), top), (x_of(frame), bottom)], fill=(255, 255, 255), width=1)
    draw.text((4, top), f"{z_hi:.1f}x", fill=ACCENT)
    draw.text((4, bottom - 10), f"{z_lo:.1f}x", fill=ACCENT)
    draw.text((right + 4, top), f"+{p_lim:.2f}", fill=PAN_X)
    draw.text((right + 4, bottom - 10), f"-{p_lim:.2f}", fill=PAN_X)
    draw.text((left, bottom + 8), "zoom", fill=ACCENT)
    draw.text((left + 44, bottom + 8), "pan x", fill=PAN_X)
    draw.text((left + 92, bottom + 8), "pan y", fill=PAN_Y)
    draw.text((left + 140, bottom + 8), f"yaw (±{y_lim:.0f}°)" if has_yaw else "yaw 0°", fill=YAW)
    draw.text((left + 230, bottom + 8), "| cut", fill=CUT)
    draw.text((right - 60, bottom + 8), f"frame {frame}", fill=TEXT)
    return np.asarray(image)


CORRELATION_ROWS = 6
CORRELATION_TILE = 96


def correlation_frames(frames: int, rows: int = CORRELATION_ROWS) -> np.ndarray:
    """The target frames :func:`engine.animate.correlation_picture` shows, one per row (its own sampling)."""
    return np.linspace(0, frames - 1, min(rows, frames)).round().astype(int)


def correlation_or_none(reference_images: list[np.ndarray], correlation: np.ndarray | None,
                        names: list[str] | None = None, shares: list[float] | None = None) -> np.ndarray | None:
    """engine's correlation grid (rows: target frames, columns: photos), labelled: the photos' names (and their
    share of the kept tokens) on top, the frame numbers on the left, a colour scale with its values below."""
    import cv2

    from engine.animate import correlation_picture

    if correlation is None or not len(reference_images):
        return None
    tile = CORRELATION_TILE
    grid = correlation_picture(reference_images, correlation, frames=CORRELATION_ROWS, size=tile)
    picks = correlation_frames(correlation.shape[0])
    count = len(reference_images)
    names = names or [f"photo {i + 1}" for i in range(count)]
    margin, header, footer = 64, 40, 46
    height, width = grid.shape[0] + header + footer, grid.shape[1] + margin + 8
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    canvas[header:header + grid.shape[0], margin:margin + grid.shape[1]] = grid
    font = cv2.FONT_HERSHEY_SIMPLEX

    def text(s: str, x: int, y: int, scale: float = 0.4, colour=TEXT, fit: int | None = None) -> None:
        if fit is not None:
            (tw, _), _ = cv2.getTextSize(s, font, scale, 1)
            if tw > fit:
                scale *= fit / tw
        cv2.putText(canvas, s, (x, y), font, scale, colour, 1, cv2.LINE_AA)

    for r in range(count):
        x = margin + r * tile + 3
        text(f"{r + 1}. {names[r]}", x, 16, fit=tile - 6)
        if shares is not None:
            text(f"{100 * shares[r]:.0f}% kept", x, 32, colour=ACCENT, fit=tile - 6)
    text("frame", 6, 16)
    for row, frame in enumerate(picks):
        text(f"f{frame}", 8, header + row * tile + tile // 2 + 5, 0.45)
    # the colour scale: the grid's own normalisation (min..max over all frames and photos)
    lo, hi = float(correlation.min()), float(correlation.max())
    bar_left, bar_right, bar_top = margin, width - 8, header + grid.shape[0] + 8
    ramp = np.linspace(0, 255, bar_right - bar_left).astype(np.uint8)[None, :].repeat(10, axis=0)
    canvas[bar_top:bar_top + 10, bar_left:bar_right] = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[..., ::-1]
    text(f"{lo:.2f} little used", bar_left, bar_top + 26, 0.38)
    label = f"used most {hi:.2f}"
    (tw, _), _ = cv2.getTextSize(label, font, 0.38, 1)
    text(label, bar_right - tw, bar_top + 26, 0.38)
    text("correlation", 6, bar_top + 9, 0.35)
    return canvas


def render_pose_view(track: PoseTrack, frame: int, max_side: int = 256) -> np.ndarray:
    """One frame of a pose track drawn small (the generate tab's 'now denoising' picture)."""
    width, height = _fit_size(track.width, track.height, max_side)
    image = render_pose(track.keypoints[frame], width, height, face=False)
    image[_blank(image)] = BACKGROUND
    return image


def beside(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``right`` scaled to ``left``'s height and put to its right (the driving pose | the current estimate)."""
    import cv2

    height = left.shape[0]
    width = max(1, round(right.shape[1] * height / right.shape[0]))
    scaled = cv2.resize(right, (width, height), interpolation=cv2.INTER_LINEAR)
    gap = np.full((height, 4, 3), BACKGROUND, np.uint8)
    return np.concatenate([left, gap, scaled], axis=1)


def panel_warper(references: list[Reference], seen: PoseTrack, size: int = 320):
    """The warper :func:`warp_panel` uses for these photos at this view's size (worth keeping while only the camera
    plan changes); None without photos."""
    from engine.animate import fit_to_frame
    from engine.warps import ReferenceWarper

    if not references:
        return None
    width, height = _fit_size(seen.width, seen.height, size // 2)
    images, poses = zip(*(fit_to_frame(r.image, r.keypoints, width, height) for r in references))
    return ReferenceWarper(list(images), list(poses))


def warp_panel(references: list[Reference], seen: PoseTrack, frame: int, size: int = 320, warper=None) -> np.ndarray | None:
    """The reference photos warped into the camera's view of ``frame`` (engine.warps: what the network is given
    to copy from), labelled; None without photos. Composed at half the panel's size (a preview, redrawn on every
    edit) and shown at full size; ``warper``: :func:`panel_warper`'s, when the caller keeps one."""
    import cv2

    warper = warper or panel_warper(references, seen, size)
    if warper is None:
        return None
    width, height = _fit_size(seen.width, seen.height, size // 2)
    composite = warper.compose(seen.keypoints[frame], height, width).image
    full_w, full_h = _fit_size(seen.width, seen.height, size)
    composite = cv2.resize(composite, (full_w, full_h), interpolation=cv2.INTER_LINEAR)
    return _label(composite, "photos warped into this pose", background=(45, 48, 58))


def warp_sprite(references: list[Reference], track: PoseTrack, tile_height: int = 96, max_tiles: int = 64) -> dict | None:
    """The photos warped into the source pose of every ``stride``-th frame, tiled into one JPEG for the timeline's
    player (JSON-ready; None without photos). The player crops the camera's view out of each tile, so an edit of
    the camera plan needs no new warp: only new photos or a new motion do."""
    import math

    from engine.animate import fit_to_frame
    from engine.warps import ReferenceWarper

    if not references or not len(track):
        return None
    th = int(tile_height)
    tw = max(8, round(th * track.width / track.height))
    images, poses = zip(*(fit_to_frame(r.image, r.keypoints, tw, th) for r in references))
    warper = ReferenceWarper(list(images), list(poses))
    stride = max(1, math.ceil(len(track) / max_tiles))
    frames = range(0, len(track), stride)
    cols = max(1, min(len(frames), 4096 // tw))  # a sheet no wider than browsers decode quickly
    sheet = np.zeros((math.ceil(len(frames) / cols) * th, cols * tw, 3), np.uint8)
    for i, frame in enumerate(frames):
        row, col = divmod(i, cols)
        sheet[row * th:(row + 1) * th, col * tw:(col + 1) * tw] = warper.compose(track.keypoints[frame], th, tw).image
    return {"url": data_url(sheet, quality=75), "cols": cols, "tw": tw, "th": th, "stride": stride, "count": len(frames)}


def people_picture(frame: np.ndarray, boxes: list, chosen: int | None, max_side: int = 480) -> np.ndarray:
    """The video frame where the people were numbered, each person's box drawn with their number (1 is the
    leftmost), the followed one in the accent colour. ``boxes``: pixel boxes x0, y0, x1, y1 of that frame."""
    import cv2

    h, w = frame.shape[:2]
    width, height = _fit_size(w, h, max_side)
    out = np.ascontiguousarray(_resize(frame, width, height))
    sx, sy = width / w, height / h
    for number, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        colour = ACCENT if number == chosen else (230, 230, 230)
        pad = 0.08 * max(x1 - x0, y1 - y0)
        p0 = (round(max(0, x0 - pad) * sx), round(max(0, y0 - pad) * sy))
        p1 = (round(min(w - 1, x1 + pad) * sx), round(min(h - 1, y1 + pad) * sy))
        cv2.rectangle(out, p0, p1, (20, 20, 20), 5, cv2.LINE_AA)  # a dark rim: the box shows on light footage too
        cv2.rectangle(out, p0, p1, colour, 3 if number == chosen else 2, cv2.LINE_AA)
        tag = f"{number}" + (" followed" if number == chosen else "")
        (tw, th), _ = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
        cv2.rectangle(out, p0, (p0[0] + tw + 8, p0[1] + th + 10), colour, -1)  # inside the box's top left corner
        cv2.putText(out, tag, (p0[0] + 4, p0[1] + th + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 2, cv2.LINE_AA)
    return out


def person_at(boxes: list, x: float, y: float) -> int | None:
    """The number (from 1) of the person whose box holds the point ``x, y`` (pixels of the frame the boxes are in;
    the smallest box where they overlap), else the one whose box centre is nearest within a box size; else None."""
    if not boxes:
        return None
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if inside.any():
        return int(np.flatnonzero(inside)[np.argmin(area[inside])]) + 1
    centre = 0.5 * (b[:, :2] + b[:, 2:])
    distance = np.linalg.norm(centre - [x, y], axis=1)
    size = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    nearest = int(np.argmin(distance))
    return nearest + 1 if distance[nearest] <= size[nearest] else None
