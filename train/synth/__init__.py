"""The synthetic multi-shot world: procedural characters, motion, cameras, rendering and datasets.

Importing this package renders nothing; see :func:`make_dataset` and :class:`SynthDataset`.
"""

from .camera import SHOTS, CameraTrack, make_camera
from .character import Character, make_character
from .dataset import MakeSettings, SynthDataset, load_clip, load_index, make_dataset
from .motion import Motion, make_motion
from .render import Backdrop, Renderer
from .world import Clip, ClipSpec, render_clip

__all__ = [
    "SHOTS", "CameraTrack", "make_camera", "Character", "make_character", "MakeSettings", "SynthDataset",
    "load_clip", "load_index", "make_dataset", "Motion", "make_motion", "Backdrop", "Renderer",
    "Clip", "ClipSpec", "render_clip",
]
