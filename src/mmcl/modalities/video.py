"""Streaming video decoding with PyAV (optional dependency: ``pip install mmcl[video]``).

Why streaming: an NTU clip is 1920×1080 (about 6 MB per RGB frame), so frames are decoded one
at a time and only the requested ones are converted to arrays; decoding stops right after the
last requested index. Frames that are not requested are decoded and dropped without colour
conversion (the conversion, not the H.264 decode, dominates per-frame cost at 1080p).
Frame indices are counted from the decoded stream (0-based, decode order = presentation order
for the AVI/MP4 clips used here), not derived from timestamps: NTU's AVI timestamps are not
reliable enough for frame-accurate seeking, and the clips are short (at most 300 frames), so
decode-and-drop is both exact and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded."""


def _import_av():  # lazy: the package works without PyAV until a video is decoded
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("decoding videos needs PyAV: pip install 'mmcl[video]' (or pip install av)") from exc
    return av


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    num_frames: int  # from the container header; 0 when unknown
    fps: float


def probe_video(path: str | Path) -> VideoInfo:
    """Read the header only (no frame is decoded)."""
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            return VideoInfo(str(path), stream.codec_context.width, stream.codec_context.height, int(stream.frames), fps)
    except (OSError, av.error.FFmpegError, IndexError) as exc:
        raise VideoError(f"cannot open video {path}: {exc}") from exc


def iter_frames(
    path: str | Path, indices: Iterable[int] | None = None, *, threads: bool = True
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, H×W×3 uint8 RGB)`` for the wanted frame indices (all when ``None``), in order.

    Decoding stops after the largest wanted index. Indices beyond the end of the video are
    silently absent from the output (callers compare what they got with what they asked for).
    """
    av = _import_av()
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    if wanted is not None and not wanted:
        return
    last = None if wanted is None else wanted[-1]
    wanted_set = None if wanted is None else set(wanted)
    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as exc:
        raise VideoError(f"cannot open video {path}: {exc}") from exc
    try:
        if not container.streams.video:
            raise VideoError(f"no video stream in {path}")
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"  # frame + slice threading inside FFmpeg
        index = 0
        try:
            for frame in container.decode(stream):
                if wanted_set is None or index in wanted_set:
                    yield index, frame.to_ndarray(format="rgb24")
                index += 1
                if last is not None and index > last:
                    break
        except av.error.FFmpegError as exc:
            raise VideoError(f"decoding failed in {path} at frame {index}: {exc}") from exc
    finally:
        container.close()


def count_frames(path: str | Path) -> int:
    """Exact frame count by demuxing packets (no decoding); used when the header has none."""
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for p in container.demux(stream) if p.size > 0)
    except (OSError, av.error.FFmpegError, IndexError) as exc:
        raise VideoError(f"cannot read video {path}: {exc}") from exc


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int = 30, codec: str = "mpeg4") -> None:
    """Encode RGB uint8 frames to a video file (synthetic test/benchmark clips).

    ``mpeg4`` is used by default because every FFmpeg build ships its encoder (H.264 may not be).
    """
    av = _import_av()
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if codec == "mpeg4":
                    stream.options = {"qscale": "3"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
