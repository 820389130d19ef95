"""The FreeView engine: the network, the pipeline, poses, camera timelines, weights and video IO.

The public API, loaded on first use (``import engine`` stays cheap for the command line)::

    from engine import load_pipeline, load_reference, load_motion, CameraTimeline, AnimateSettings, animate
"""

from importlib import import_module

_EXPORTS = {
    "AnimateSettings": "engine.animate",
    "Animation": "engine.animate",
    "Reference": "engine.animate",
    "animate": "engine.animate",
    "load_motion": "engine.animate",
    "load_reference": "engine.animate",
    "shot_scale": "engine.animate",
    "correlation_picture": "engine.animate",
    "CameraTimeline": "engine.camera",
    "Keyframe": "engine.camera",
    "Cut": "engine.camera",
    "apply_camera": "engine.camera",
    "UserError": "engine.errors",
    "load_pipeline": "engine.model",
    "default_model_dir": "engine.model",
    "FreeViewPipeline": "engine.pipeline",
    "FreeViewNetwork": "engine.models.network",
    "PoseGuider": "engine.models.pose_guider",
    "PoseCorrelationModule": "engine.models.pcm",
    "PoseTrack": "engine.poses.track",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
