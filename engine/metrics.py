"""Fidelity metrics for generated frames against ground truth.

L1 (mean absolute error on 0..255), PSNR and SSIM use scikit-image's
implementations. LPIPS and FVD need pretrained networks (AlexNet/VGG for
LPIPS, I3D for FVD); they run only when those are available locally and are
otherwise reported as skipped, with the reason (:func:`unavailable_metrics`).
Images are uint8 ``(H, W, 3)`` or batches ``(N, H, W, 3)``; batch figures are
means over frames.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from .poses.track import BODY_INDEX, FACE

BASIC_METRICS = ("L1", "PSNR", "SSIM")
PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; reports cap it so JSON stays valid


def _pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = np.asarray(prediction), np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target shapes differ: {prediction.shape} vs {target.shape}")
    if prediction.ndim not in (3, 4) or prediction.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) images, got {prediction.shape}")
    if prediction.ndim == 3:
        prediction, target = prediction[None], target[None]
    return prediction, target


def l1(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error on the 0..255 scale."""
    prediction, target = _pair(prediction, target)
    return float(np.abs(prediction.astype(np.float64) - target.astype(np.float64)).mean())


def psnr(prediction: np.ndarray, target: np.ndarray, cap_db: float | None = PSNR_CAP_DB) -> float:
    """Peak signal-to-noise ratio in dB (data range 255), mean over frames; identical frames give ``cap_db``."""
    from skimage.metrics import peak_signal_noise_ratio

    prediction, target = _pair(prediction, target)
    values = []
    for p, t in zip(prediction, target):
        if np.array_equal(p, t):
            values.append(np.inf if cap_db is None else cap_db)
            continue
        value = peak_signal_noise_ratio(t.astype(np.float64), p.astype(np.float64), data_range=255)
        values.append(value if cap_db is None else min(value, cap_db))
    return float(np.mean(values))


def ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity (colour, data range 255), mean over frames."""
    from skimage.metrics import structural_similarity

    prediction, target = _pair(prediction, target)
    win = min(7, *prediction.shape[1:3])
    win -= 1 - win % 2
    values = [
        structural_similarity(t.astype(np.float64), p.astype(np.float64), channel_axis=-1, data_range=255, win_size=win)
        for p, t in zip(prediction, target)
    ]
    return float(np.mean(values))


def basic_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``{"L1": ..., "PSNR": ..., "SSIM": ...}`` for frames ``(N, H, W, 3)``."""
    return {"L1": l1(prediction, target), "PSNR": psnr(prediction, target), "SSIM": ssim(prediction, target)}


def _lpips_reason() -> str | None:
    if importlib.util.find_spec("lpips") is None:
        return "LPIPS needs the `lpips` package and its pretrained AlexNet/VGG weights, which are not installed"
    if importlib.util.find_spec("torchvision") is None:
        return "LPIPS needs torchvision's pretrained AlexNet, and torchvision is not installed"
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return f"LPIPS needs the pretrained AlexNet weights, not found in {hub} (no download is attempted)"
    return None


def _fvd_reason() -> str | None:
    path = os.environ.get("FREEVIEW_I3D")
    if not path:
        return "FVD needs a pretrained I3D network; set FREEVIEW_I3D to a local TorchScript file (none is bundled)"
    if not Path(path).is_file():
        return f"FVD needs a pretrained I3D network; FREEVIEW_I3D={path} does not exist"
    return None


def unavailable_metrics() -> dict[str, str]:
    """Metrics that cannot run here, each with the reason."""
    reasons = {"LPIPS": _lpips_reason(), "FVD": _fvd_reason()}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def lpips(prediction: np.ndarray, target: np.ndarray) -> float:
    """Learned perceptual distance (AlexNet LPIPS), mean over frames; raises when its network is unavailable."""
    reason = _lpips_reason()
    if reason is not None:
        raise RuntimeError(reason)
    import lpips as lpips_lib  # noqa: PLC0415
    import torch

    prediction, target = _pair(prediction, target)
    net = lpips_lib.LPIPS(net="alex", verbose=False)
    to = lambda a: torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)  # noqa: E731
    with torch.no_grad():
        return float(net(to(prediction), to(target)).mean())


def fvd(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fréchet video distance with a local I3D (FREEVIEW_I3D, TorchScript returning features); raises when unavailable."""
    reason = _fvd_reason()
    if reason is not None:
        raise RuntimeError(reason)
    import torch

    model = torch.jit.load(os.environ["FREEVIEW_I3D"]).eval()

    def features(videos):  # (B, F, H, W, 3) uint8 -> (B, D)
        x = torch.from_numpy(np.asarray(videos, np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
        with torch.no_grad():
            return model(x).double().numpy()

    a, b = features(prediction), features(target)
    from scipy import linalg  # noqa: PLC0415

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


# --------------------------------------------------------------------------- appearance

# Body parts whose colour is read from the keypoints, in this order in every ``(parts, 3)`` array.
PARTS = ("torso", "upper arms", "thighs", "hair", "skin", "shoes")
VISIBLE = 0.3  # keypoint confidence above which a keypoint counts as seen (the pose code's threshold)
MIN_PART_PIXELS = 8  # fewer pixels than this in a part's region: too small to read a colour from (a wide shot's face)
_LIPS = np.arange(FACE.start + 48, FACE.start + 60)  # the outer lips in the iBUG-68 face layout  # eye corner, nose wing, jaw


def _seen(keypoints: np.ndarray, indices) -> bool:
    points = keypoints[np.atleast_1d(indices)]
    return bool(np.all(points[:, 2] > VISIBLE) and np.all((points[:, :2] >= 0) & (points[:, :2] <= 1)))


def _seen_centre(kp: np.ndarray, xy: np.ndarray, indices, share: float = 0.75) -> np.ndarray | None:
    """Mean pixel position of the seen keypoints among ``indices``, if at least ``share`` of them are seen."""
    seen = (kp[indices, 2] > VISIBLE) & np.all((kp[indices, :2] >= 0) & (kp[indices, :2] <= 1), axis=1)
    return xy[indices][seen].mean(0) if seen.mean() >= share else None


def part_regions(keypoints: np.ndarray, height: int, width: int) -> dict[str, np.ndarray]:
    """Where each part's colour is read: per part of :data:`PARTS` a boolean mask ``(height, width)``, drawn only
    from keypoints ``(128, 3)`` that are seen and inside the frame (an unseen part's mask is empty), clipped
    to the frame.

    The regions stay inside the part on a person of ordinary build, clear of the details drawn on it: two
    strips down the chest either side of its centre line (a chest logo sits on that line), the top of the
    upper arms (short sleeves reach that far), the upper thighs (shorts too), just below each ankle (the
    shoe), the top of the head above the brows (the hair) and between the eyes and the nose tip
    (the skin: below glasses, above a moustache).
    """
    import cv2

    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (128, 3):
        raise ValueError(f"expected keypoints (128, 3), got {kp.shape}")
    xy = kp[:, :2] * [width, height] - 0.5  # continuous coordinates -> pixel indices (centres at +0.5)
    masks = {part: np.zeros((height, width), np.uint8) for part in PARTS}
    fixed = 16  # cv2 draws at 1/16 pixel (shift 4)

    def capsule(part, a, b, radius):
        pa, pb = (tuple(int(round(v * fixed)) for v in p) for p in (a, b))
        cv2.line(masks[part], pa, pb, 1, max(1, int(round(2 * radius))), cv2.LINE_8, 4)
        cv2.circle(masks[part], pa, max(1, int(round(radius * fixed))), 1, -1, cv2.LINE_8, 4)

    b = BODY_INDEX
    if _seen(kp, [b["neck"], b["r_shoulder"], b["l_shoulder"]]):
        neck, half = xy[b["neck"]], (xy[b["l_shoulder"]] - xy[b["r_shoulder"]]) / 2
        hips = [b[h] for h in ("r_hip", "l_hip") if _seen(kp, b[h])]
        if hips:
            spine = xy[hips].mean(0) - neck
        else:  # hips out of view: the torso is about 1.2 shoulder widths long, at right angles to the shoulders
            spine = 2.4 * np.array([-half[1], half[0]])
            spine *= np.sign(spine[1]) or 1.0  # pointing down the image
        for side in (-0.55, 0.55):
            capsule("torso", neck + 0.15 * spine + side * half, neck + 0.65 * spine + side * half,
                    0.2 * float(np.linalg.norm(half)))
    for part, pairs, t0, t1, r in (
        ("upper arms", (("r_shoulder", "r_elbow"), ("l_shoulder", "l_elbow")), 0.15, 0.4, 0.1),
        ("thighs", (("r_hip", "r_knee"), ("l_hip", "l_knee")), 0.2, 0.55, 0.12),
        ("shoes", (("r_knee", "r_ankle"), ("l_knee", "l_ankle")), 1.08, 1.12, 0.05),
    ):  # the stretch t0..t1 of the segment first -> second, radius r of its length
        for first, second in pairs:
            if _seen(kp, [b[first], b[second]]):
                a, c = xy[b[first]], xy[b[second]]
                capsule(part, a + t0 * (c - a), a + t1 * (c - a), r * float(np.linalg.norm(c - a)))
    # The face: a fringe hides the brows and the top of the nose, a beard the jaw; an eye, the nose tip and
    # the lips show whenever the face does.
    eyes = [b[e] for e in ("r_eye", "l_eye") if _seen(kp, b[e])]
    lips = _seen_centre(kp, xy, _LIPS)
    if eyes and lips is not None:
        # the top of the head, over the face and ears seen, about 2.1 eye heights (lips to eyes) above the lips
        # (an upright head; a turned one keeps its crown between its face and its ears)
        height = abs(float(xy[eyes, 1].mean() - lips[1]))
        ears = [b[e] for e in ("r_ear", "l_ear") if _seen(kp, b[e])]
        x = float(np.mean([lips[0], xy[eyes, 0].mean(), *xy[ears, 0]]))
        capsule("hair", np.array([x, lips[1] - 2.0 * height]), np.array([x, lips[1] - 2.15 * height]), 0.2 * height)
    if eyes and _seen(kp, b["nose"]):  # below the eyes and glasses, above the nose tip and a moustache
        eye, tip = xy[eyes].mean(0), xy[b["nose"]]
        capsule("skin", eye + 0.45 * (tip - eye), eye + 0.85 * (tip - eye), 0.3 * float(np.linalg.norm(tip - eye)))
    return {part: mask.astype(bool) for part, mask in masks.items()}


def to_lab(image: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of uint8 RGB pixels ``(..., 3)``."""
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(image, np.uint8)[..., :3])


LAB_BIN = 8.0  # CIELAB units per histogram bin of dominant_colour


def dominant_colour(lab: np.ndarray) -> np.ndarray:
    """The colour most pixels ``(N, 3)`` (CIELAB) share: the median of those in the most populated 3x3x3 block of
    :data:`LAB_BIN`-wide bins. Unlike a plain median it is one of the colours present (a striped shirt gives
    its ground or its stripe, not a mixture) and thin details (a logo's edge, a brow) do not shift it."""
    lab = np.asarray(lab, float).reshape(-1, 3)
    bins = np.floor(lab / LAB_BIN).astype(np.int64)
    keys, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    offsets = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lookup = {tuple(k): c for k, c in zip(keys.tolist(), counts.tolist())}
    block = [sum(lookup.get((a + x, b + y, c + z), 0) for x, y, z in offsets.tolist()) for a, b, c in keys.tolist()]
    best = keys[int(np.argmax(block))]
    near = np.abs(keys - best).max(axis=1) <= 1
    return np.median(lab[near[inverse]], axis=0)


def part_colours(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Dominant CIELAB colour (:func:`dominant_colour`) of each of :data:`PARTS` in ``image`` (H, W, 3) uint8 RGB, read at ``keypoints``
    (128, 3) (:func:`part_regions`); ``(len(PARTS), 3)``, NaN where a part is not seen or too small."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    h, w = image.shape[:2]
    lab = None
    out = np.full((len(PARTS), 3), np.nan)
    for i, mask in enumerate(part_regions(keypoints, h, w).values()):
        if mask.sum() < MIN_PART_PIXELS:
            continue
        lab = to_lab(image) if lab is None else lab
        out[i] = dominant_colour(lab[mask])
    return out


def part_colour_track(frames: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Per-frame :func:`part_colours` of frames ``(F, H, W, 3)`` at keypoints ``(F, 128, 3)``: ``(F, parts, 3)``."""
    if len(frames) != len(keypoints):
        raise ValueError(f"{len(frames)} frames but {len(keypoints)} poses")
    return np.stack([part_colours(f, k) for f, k in zip(frames, keypoints)]) if len(frames) else np.zeros((0, len(PARTS), 3))


def summary_colours(colours: np.ndarray) -> np.ndarray:
    """One colour per part from many readings ``(N, parts, 3)``: the per-channel median of the readings that saw
    it; ``(parts, 3)``, NaN where none did."""
    colours = np.asarray(colours, float)
    out = np.full(colours.shape[1:], np.nan)
    seen = np.isfinite(colours).all(-1)
    for p in range(colours.shape[1]):
        if seen[:, p].any():
            out[p] = np.median(colours[seen[:, p], p], axis=0)
    return out


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of CIELAB colours ``(..., 3)``; NaN where either is NaN."""
    from skimage.color import deltaE_ciede2000

    a, b = np.asarray(lab_a, float), np.asarray(lab_b, float)
    a, b = np.broadcast_arrays(a, b)
    out = np.full(a.shape[:-1], np.nan)
    ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
    if ok.any():
        out[ok] = deltaE_ciede2000(a[ok], b[ok])
    return out


def part_colour_error(prediction: np.ndarray, target: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """ΔE (CIEDE2000) between the part colours of prediction and ground truth, frame by frame, read at the
    target's keypoints: ``(F, parts)``, NaN where the part is not seen."""
    prediction, target = _pair(prediction, target)
    keypoints = np.asarray(keypoints).reshape(-1, *np.shape(keypoints)[-2:])
    return delta_e(part_colour_track(prediction, keypoints), part_colour_track(target, keypoints))


SWAP_MIN_DE = 10.0  # parts whose colour differs less than this between the two people cannot tell them apart


def identity_swap_scores(output: np.ndarray, donor: np.ndarray, driver: np.ndarray,
                         min_difference: float = SWAP_MIN_DE) -> dict[str, np.ndarray]:
    """How far an animation of person A (the donor of the references) in person B's motion (the driver) looks
    like A. Each argument is one CIELAB colour per part ``(parts, 3)`` (NaN: not seen).

    ``closer_to_donor`` ``(parts,)``: 1 where the output's part is nearer A's colour than B's, 0 where not,
    NaN where the part is unseen in any of the three or A and B differ by less than ``min_difference``;
    ``delta_e_to_donor`` ``(parts,)``: ΔE from the output to A (NaN where unseen).
    """
    to_a, to_b = delta_e(output, donor), delta_e(output, driver)
    apart = delta_e(donor, driver)
    counted = np.isfinite(to_a) & np.isfinite(to_b) & (apart >= min_difference)
    return {"closer_to_donor": np.where(counted, (to_a < to_b).astype(float), np.nan), "delta_e_to_donor": to_a}


def _grey(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, np.float64)
    if frames.ndim == 3:
        frames = frames[None]
    return frames[..., :3] @ np.array([0.299, 0.587, 0.114])


def laplacian_variance(frames: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (0..255), mean over frames ``(N, H, W, 3)`` or one ``(H, W, 3)``:
    high for crisp edges and texture, low for blur."""
    import cv2

    return float(np.mean([cv2.Laplacian(g, cv2.CV_64F, ksize=1).var() for g in _grey(frames)]))


HIGH_FREQUENCY_CUTOFF = 0.25  # cycles per pixel: the upper half of what a pixel grid can hold (Nyquist 0.5)


def high_frequency_energy(frames: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> float:
    """Mean spectral power above ``cutoff`` cycles/pixel of the grey image (Hann-windowed so the frame's own
    border is not counted as an edge), mean over frames."""
    grey = _grey(frames)
    h, w = grey.shape[1:]
    window = np.outer(np.hanning(h), np.hanning(w))
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    high = radius > cutoff
    values = []
    for g in grey:
        power = np.abs(np.fft.fft2((g - g.mean()) * window)) ** 2 / (h * w)
        values.append(power[high].mean())
    return float(np.mean(values))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 1e-12 else float("nan")


def sharpness_ratios(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``{"laplacian": ..., "high_frequency": ...}``: the prediction's :func:`laplacian_variance` and
    :func:`high_frequency_energy` over the ground truth's (1: as sharp, below 1: blurrier; NaN for a flat target)."""
    prediction, target = _pair(prediction, target)
    return {"laplacian": _ratio(laplacian_variance(prediction), laplacian_variance(target)),
            "high_frequency": _ratio(high_frequency_energy(prediction), high_frequency_energy(target))}


def frame_difference(frames: np.ndarray, cut: np.ndarray | None = None) -> float:
    """Mean absolute difference (0..255) between consecutive frames ``(N, H, W, 3)``, leaving out the pairs that
    span a cut (``cut[i]``: frame i starts a new shot); NaN with no pair left."""
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 4:
        raise ValueError(f"expected frames (N, H, W, 3), got {frames.shape}")
    keep = np.ones(max(len(frames) - 1, 0), bool)
    if cut is not None:
        cut = np.asarray(cut, bool)
        if cut.shape != (len(frames),):
            raise ValueError(f"cut must have one flag per frame ({len(frames)}), got {cut.shape}")
        keep &= ~cut[1:]
    if not keep.any():
        return float("nan")
    return float(np.abs(np.diff(frames, axis=0))[keep].mean())


def flicker_ratio(prediction: np.ndarray, target: np.ndarray, cut: np.ndarray | None = None) -> float:
    """The prediction's :func:`frame_difference` over the ground truth's (1: moves as much; above 1: shimmers)."""
    prediction, target = _pair(prediction, target)
    return _ratio(frame_difference(prediction, cut), frame_difference(target, cut))
