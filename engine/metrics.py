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
