"""CLIP image preprocessing as transformers' ``CLIPImageProcessor`` does it, on tensors.

The rule (``CLIPImageProcessor``'s defaults): resize so the *short* side is ``shortest_edge``
(bicubic), crop the centre to ``crop`` (height, width), normalise with CLIP's mean and std.
Squashing a non-square photo to a square would feed the image encoder a distorted person.

A model directory keeps the settings where diffusers pipelines keep them,
``feature_extractor/preprocessor_config.json`` (readable by
``CLIPImageProcessor.from_pretrained(model_dir, subfolder="feature_extractor")``);
a model without one uses the rule at its image encoder's ``image_size``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

PREPROCESSOR_FILE = Path("feature_extractor") / "preprocessor_config.json"


@dataclass(frozen=True)
class ClipPreprocessing:
    shortest_edge: int
    crop: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float] = tuple(OPENAI_CLIP_MEAN)
    std: tuple[float, float, float] = tuple(OPENAI_CLIP_STD)

    @classmethod
    def for_size(cls, size: int) -> "ClipPreprocessing":
        """``CLIPImageProcessor``'s defaults for an encoder of ``size`` pixels (224 -> resize 224, crop 224x224)."""
        return cls(int(size), (int(size), int(size)))

    @classmethod
    def from_processor_config(cls, config: dict, size: int) -> "ClipPreprocessing":
        """From a ``preprocessor_config.json`` dict; ValueError naming what it cannot use."""
        default = cls.for_size(size)
        resize = config.get("size", {"shortest_edge": size})
        if isinstance(resize, int):
            resize = {"shortest_edge": resize}
        if not isinstance(resize, dict) or "shortest_edge" not in resize:
            raise ValueError(f"CLIP preprocessing size {resize!r} is not a shortest-edge resize")
        crop = config.get("crop_size", {"height": size, "width": size})
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        if config.get("do_center_crop") is False:
            raise ValueError("CLIP preprocessing without a centre crop is not supported")
        out = cls(int(resize["shortest_edge"]), (int(crop["height"]), int(crop["width"])),
                  tuple(config.get("image_mean", default.mean)), tuple(config.get("image_std", default.std)))
        if out.shortest_edge < min(out.crop) or len(out.mean) != 3 or len(out.std) != 3:
            raise ValueError(f"CLIP preprocessing {config} is not usable (crop larger than the resize, or not RGB)")
        return out

    def processor_config(self) -> dict:
        """The ``CLIPImageProcessor`` settings, as ``preprocessor_config.json`` holds them."""
        return {
            "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": self.shortest_edge},
            "resample": 3, "do_center_crop": True, "crop_size": {"height": self.crop[0], "width": self.crop[1]},
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(self.mean),
            "image_std": list(self.std), "do_convert_rgb": True,
        }

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images ``(n, 3, H, W)`` in [0, 1] -> CLIP-normalised pixels ``(n, 3, crop_h, crop_w)``."""
        height, width = images.shape[-2:]
        scale = self.shortest_edge / min(height, width)
        # transformers: the short side becomes shortest_edge, the long one int(shortest_edge * long / short)
        size = (self.shortest_edge, int(self.shortest_edge * width / height)) if height <= width else \
            (int(self.shortest_edge * height / width), self.shortest_edge)
        if scale != 1 or size != (height, width):
            images = F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False)
        top, left = (size[0] - self.crop[0]) // 2, (size[1] - self.crop[1]) // 2
        pixels = images[..., top:top + self.crop[0], left:left + self.crop[1]].clamp(0, 1)
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (pixels - mean) / std


def read_clip_preprocessing(model_dir: str | os.PathLike, size: int) -> ClipPreprocessing:
    """The settings a model directory keeps, else ``CLIPImageProcessor``'s defaults at ``size``."""
    path = Path(model_dir) / PREPROCESSOR_FILE
    if not path.is_file():
        return ClipPreprocessing.for_size(size)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON ({exc})") from None
    return ClipPreprocessing.from_processor_config(config, size)


def write_clip_preprocessing(model_dir: str | os.PathLike, preprocessing: ClipPreprocessing) -> None:
    path = Path(model_dir) / PREPROCESSOR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(preprocessing.processor_config(), indent=2) + "\n")
