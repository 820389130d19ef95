"""Video IO: H.264 writing, reading, probing, rotation metadata and bad files."""

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from engine.errors import UserError
from engine.video import probe_video, read_video, write_video

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _frames(n=6, h=48, w=64):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, :, : w // 2] = (200, 40, 40)
        frames[i, :, w // 2:] = (40, 40, 200)
        frames[i, i * 4:(i * 4) + 8, :, 1] = 255
    return frames


def test_write_then_read_round_trip(tmp_path):
    frames = _frames()
    path = write_video(tmp_path / "out.mp4", frames, fps=12.5)
    info = probe_video(path)
    assert (info.width, info.height, info.frames) == (64, 48, 6) and info.fps == pytest.approx(12.5)
    decoded, fps, size = read_video(path)
    decoded = np.stack(list(decoded))
    assert decoded.shape == frames.shape and size == (64, 48)
    assert np.abs(decoded.astype(int) - frames).mean() < 6  # lossy but close, colours in RGB order
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary left behind
    head = subprocess.run([FFMPEG, "-i", str(path)], capture_output=True, text=True).stderr
    assert "h264" in head and "yuv420p" in head


def test_odd_sizes_are_padded_and_iterables_accepted(tmp_path):
    path = write_video(tmp_path / "odd.mp4", (f for f in _frames(3, 33, 51)), fps=10)
    info = probe_video(path)
    assert (info.width, info.height) == (52, 34)


def test_audio_is_copied(tmp_path):
    wav = tmp_path / "tone.wav"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(wav)], check=True)
    path = write_video(tmp_path / "a.mp4", _frames(10), fps=10, audio_from=wav)
    head = subprocess.run([FFMPEG, "-i", str(path)], capture_output=True, text=True).stderr
    assert "Audio: aac" in head and probe_video(path).frames == 10


def test_rotation_metadata_is_applied(tmp_path):
    base = write_video(tmp_path / "base.mp4", _frames(4, 32, 64), fps=10)
    rotated = tmp_path / "phone.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-display_rotation:v:0", "90", "-i", str(base), "-c", "copy",
                    str(rotated)], check=True)
    info = probe_video(rotated)
    assert (info.width, info.height) == (32, 64)
    frames, _, size = read_video(rotated)
    assert next(frames).shape == (64, 32, 3) and size == (32, 64)


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_empty_or_corrupt_files_raise_user_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(UserError, match="bad.mp4"):
        read_video(path)
    with pytest.raises(UserError):
        probe_video(tmp_path / "missing.mp4")


def test_write_rejects_nothing_to_write(tmp_path):
    with pytest.raises(UserError, match="no frames"):
        write_video(tmp_path / "x.mp4", [], fps=10)
    with pytest.raises(UserError, match="fps"):
        write_video(tmp_path / "x.mp4", _frames(1), fps=0)
    assert not (tmp_path / "x.mp4").exists()


def test_variable_frame_rate_time_stamps_increase(tmp_path):
    vfr = tmp_path / "vfr.mp4"
    # frames at irregular times: 0, 0.1, 0.15, 0.4, 0.45, ... seconds
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=20", "-t", "1",
                    "-vf", "select='not(mod(n\\,3))+eq(mod(n\\,3)\\,1)',setpts='N/20/TB+0.2*floor(N/2)/TB'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vfr)], check=True)
    frames, fps, size = read_video(vfr, with_timestamps=True)
    stamps = [ms for _, ms in frames]
    assert len(stamps) > 5 and size == (64, 48) and fps > 0
    steps = np.diff(stamps)
    assert (steps > 0).all() and steps.max() > 1.5 * steps.min()  # irregular, strictly increasing


def test_read_frame_gives_one_frame_or_one_clear_error(tmp_path):
    from engine.video import read_frame, write_video

    frames = np.stack([np.full((16, 16, 3), 40 * i, np.uint8) for i in range(4)])
    path = tmp_path / "ramp.mp4"
    write_video(path, frames, 10.0)
    assert read_frame(path, 2).shape == (16, 16, 3)
    assert abs(float(read_frame(path, 2).mean()) - 80) < 12 and abs(float(read_frame(path, 0).mean())) < 12
    with pytest.raises(UserError, match="ramp.mp4 has no frame 9"):
        read_frame(path, 9)
