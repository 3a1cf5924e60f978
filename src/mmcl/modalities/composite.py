"""RGB temporal image (paper Eq. 2): m person crops, uniformly sampled, concatenated left to right.

``I = ⊕_m U_n^m(Γ(ε(k_1)), …, Γ(ε(k_n)))``. The paper fixes m = 5 and the left-to-right order;
everything else is left open (REFERENCE §7.7 and §13). The choices made here:

- **person frames (ε)**: frames with a person box, from the skeleton's colour joints (default
  for NTU) or from a detector (see ``mmcl.modalities.detect``); frames without a person are
  skipped as in the reference. A video with no person frame is reported, no image is written.
  Skeleton frame t is taken to be video frame t (NTU's skeleton and video are frame-aligned; a
  prepared skeleton whose frames were dropped during denoising would shift this, so build jobs
  from the raw per-frame colour joints when that matters).
- **uniform sampling (U_n^m)**: the centre of each of m equal segments of the n person frames,
  ``idx_j = floor((j + 0.5) · n / m)`` for j = 0..m-1 (``uniform_sample``). With n < m frames
  repeat, so every composite has exactly m tiles.
- **resize (Γ)**: every crop fills a fixed tile of ``TILE_SIZE`` = 160×320 (W×H, a portrait 1:2
  that suits standing people). The crop box is first grown around its centre to the tile aspect
  ratio (more real context instead of padding), shifted inside the frame, clamped; whatever
  still does not fit (box larger than the frame in one direction) is letterboxed with black.
  Resampling: PIL bilinear with reducing_gap (antialiased downscale).
- **composite**: 5 tiles → 800×320 RGB, time order left to right; JPEG quality ``JPEG_QUALITY``
  = 90 (the reference's per-frame dumps used 77; the composite is a second lossy generation, so
  a higher quality limits compounding artefacts), 4:2:0 chroma subsampling (PIL default), no
  EXIF. Fixed size, so batches of composites always collate (fixes REFERENCE §12 item 16).
- **files**: ``<out_dir>/<sample name>.jpg``, written to a temp name and ``os.replace``d, so an
  interrupted run never leaves a truncated image; existing images are skipped (resume).
  Failures (missing video, unreadable video, no person, ...) go to ``<out_dir>/rgb_report.json``.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from mmcl.formats.ntu_parse import parse_skeleton_file
from mmcl.io import atomic_write, atomic_write_json

from .detect import (
    DETECTOR_MARGIN,
    SKELETON_MARGIN,
    Box,
    HOGPersonDetector,
    PersonDetector,
    is_two_person_ntu,
    select_detection,
    skeleton_box,
)
from .video import VideoError, iter_frames, probe_video

#: m, frames per composite (paper §3.2 implementation details; REFERENCE §7.7).
FRAMES_PER_IMAGE = 5
#: Tile (width, height) per person frame; documented choice (the paper gives none).
TILE_SIZE: tuple[int, int] = (160, 320)
#: JPEG quality of the composite (documented choice; the reference frame dumps used 77).
JPEG_QUALITY = 90
#: Failure report written next to the images.
REPORT_FILE = "rgb_report.json"


class NoPersonError(RuntimeError):
    """The video has no frame with a person box."""


@dataclass
class RGBJob:
    """One composite to build. ``colors``: T×M×V×2 colour-pixel joints (None: use a detector)."""

    name: str
    video_path: str | Path
    colors: np.ndarray | None = None
    two_person: bool = False


@dataclass
class CompositeResult:
    image: np.ndarray  # H×(m·W)×3 uint8
    frames: list[int]  # sampled video frame indices, time order
    boxes: list[Box]  # crop boxes actually cut from those frames (full-frame pixels)
    person_frames: int  # n
    video_frames: int


def uniform_sample(n: int, m: int) -> list[int]:
    """Centres of m equal segments of range(n): ``floor((j + 0.5) * n / m)``; repeats when n < m."""
    if n <= 0:
        return []
    return [min(n - 1, int(math.floor((j + 0.5) * n / m))) for j in range(m)]


def fit_box_to_aspect(box: Box, aspect: float, width: int, height: int) -> Box:
    """Grow ``box`` around its centre to ``aspect`` = w/h, shift it inside the frame, clamp."""
    w, h = box.width, box.height
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    x1, y1 = cx - w / 2, cy - h / 2
    x1 = min(max(x1, 0.0), max(0.0, width - w))
    y1 = min(max(y1, 0.0), max(0.0, height - h))
    return Box(max(0.0, x1), max(0.0, y1), min(float(width), x1 + w), min(float(height), y1 + h), box.score)


def crop_tile(frame: np.ndarray, box: Box, tile_size: tuple[int, int] = TILE_SIZE) -> np.ndarray:
    """Crop ``box`` (integer pixels covering it) and letterbox-resize into a tile (H×W×3)."""
    tw, th = tile_size
    fh, fw = frame.shape[:2]
    x1, y1 = max(0, int(math.floor(box.x1))), max(0, int(math.floor(box.y1)))
    x2, y2 = min(fw, int(math.ceil(box.x2))), min(fh, int(math.ceil(box.y2)))
    crop = frame[y1:y2, x1:x2]
    tile = np.zeros((th, tw, 3), dtype=np.uint8)
    if crop.size == 0:
        return tile
    s = min(tw / crop.shape[1], th / crop.shape[0])
    nw, nh = max(1, min(tw, round(crop.shape[1] * s))), max(1, min(th, round(crop.shape[0] * s)))
    img = Image.fromarray(np.ascontiguousarray(crop)).resize((nw, nh), Image.BILINEAR, reducing_gap=2.0)
    ox, oy = (tw - nw) // 2, (th - nh) // 2
    tile[oy : oy + nh, ox : ox + nw] = np.asarray(img)
    return tile


def compose_sample(
    job: RGBJob,
    *,
    frames: int = FRAMES_PER_IMAGE,
    frame_size: tuple[int, int] = TILE_SIZE,
    detector: PersonDetector | None = None,
    margin: float | None = None,
) -> CompositeResult:
    """Build one composite in memory (skeleton boxes when ``detector`` is None)."""
    info = probe_video(job.video_path)
    W, H = info.width, info.height
    aspect = frame_size[0] / frame_size[1]
    if detector is None:
        if job.colors is None:
            raise ValueError(f"{job.name}: no skeleton colour joints; pass a detector (box_source='hog', ...)")
        colors = np.asarray(job.colors)
        limit = colors.shape[0] if info.num_frames <= 0 else min(colors.shape[0], info.num_frames)
        mg = SKELETON_MARGIN if margin is None else margin
        person: dict[int, Box] = {}
        for t in range(limit):
            b = skeleton_box(colors[t], job.two_person, W, H, mg)
            if b is not None:
                person[t] = fit_box_to_aspect(b, aspect, W, H)
        order = sorted(person)
        if not order:
            raise NoPersonError(f"{job.name}: no frame with skeleton joints")
        chosen = [order[i] for i in uniform_sample(len(order), frames)]
        tiles: dict[int, np.ndarray] = {}
        for idx, frame in iter_frames(job.video_path, chosen):
            tiles[idx] = crop_tile(frame, person[idx], frame_size)
        missing = sorted(set(chosen) - set(tiles))
        if missing:
            raise VideoError(f"{job.name}: video ends before skeleton frame(s) {missing}")
        boxes = [person[i] for i in chosen]
        n_video = info.num_frames
    else:
        mg = DETECTOR_MARGIN if margin is None else margin
        tiles, person = {}, {}
        n_video = 0
        for idx, frame in iter_frames(job.video_path):
            n_video = idx + 1
            b = select_detection(detector.detect(frame), job.two_person, W, H, mg)
            if b is None:
                continue
            person[idx] = fit_box_to_aspect(b, aspect, W, H)
            tiles[idx] = crop_tile(frame, person[idx], frame_size)  # keep small tiles, decode once
        order = sorted(person)
        if not order:
            raise NoPersonError(f"{job.name}: the detector found no person in {n_video} frames")
        chosen = [order[i] for i in uniform_sample(len(order), frames)]
        boxes = [person[i] for i in chosen]
    image = np.concatenate([tiles[i] for i in chosen], axis=1)
    return CompositeResult(image, chosen, boxes, len(order), n_video)


def save_jpeg_atomic(image: np.ndarray, path: Path, quality: int = JPEG_QUALITY) -> None:
    """Write via a temp file + ``os.replace`` so a killed run leaves no truncated JPEG."""
    atomic_write(path, lambda fh: Image.fromarray(image).save(fh, format="JPEG", quality=quality))


@dataclass
class ExtractReport:
    """Outcome of ``extract_rgb``; ``failures`` maps name -> {"reason", "message"}."""

    out_dir: str
    total: int = 0
    written: int = 0
    skipped_existing: int = 0
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)  # frames/boxes per written sample
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def no_person(self) -> list[str]:
        return sorted(n for n, f in self.failures.items() if f["reason"] == "no_person")

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self, with_samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_samples:
            d.pop("samples")
        d["failure_counts"] = {}
        for f in self.failures.values():
            d["failure_counts"][f["reason"]] = d["failure_counts"].get(f["reason"], 0) + 1
        return d

    def write(self, path: Path | None = None) -> Path:
        path = Path(path or Path(self.out_dir) / REPORT_FILE)
        atomic_write_json(path, self.to_dict(), indent=1)
        return path


def _run_job(
    job: RGBJob,
    out_dir: str,
    frames: int,
    frame_size: tuple[int, int],
    detector: PersonDetector | None,
    margin: float | None,
    quality: int,
) -> tuple[str, str, Any]:
    """Worker body (top level so it pickles): returns (name, status, detail)."""
    if not Path(job.video_path).is_file():
        return job.name, "missing_video", f"video not found: {job.video_path}"
    try:
        res = compose_sample(job, frames=frames, frame_size=frame_size, detector=detector, margin=margin)
    except NoPersonError as exc:
        return job.name, "no_person", str(exc)
    except VideoError as exc:
        return job.name, "unreadable", str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad sample must not stop a 100k-video run
        return job.name, "error", f"{type(exc).__name__}: {exc}"
    save_jpeg_atomic(res.image, Path(out_dir) / f"{job.name}.jpg", quality)
    return job.name, "written", {
        "frames": res.frames,
        "boxes": [b.as_list() for b in res.boxes],
        "person_frames": res.person_frames,
        "video_frames": res.video_frames,
    }


def extract_rgb(
    samples: Sequence[RGBJob],
    out_dir: str | Path,
    *,
    frames: int = FRAMES_PER_IMAGE,
    frame_size: tuple[int, int] = TILE_SIZE,
    box_source: str | PersonDetector = "skeleton",
    margin: float | None = None,
    workers: int = 1,
    progress: bool = True,
    jpeg_quality: int = JPEG_QUALITY,
    overwrite: bool = False,
) -> ExtractReport:
    """Write ``<out_dir>/<name>.jpg`` composites for ``samples``; resumable and parallel over videos.

    ``box_source``: "skeleton" (colour joints of each job), "hog" (OpenCV HOG), or any
    ``PersonDetector`` instance (must pickle when ``workers`` > 1). ``margin``: None = the
    source's default (``SKELETON_MARGIN`` / ``DETECTOR_MARGIN``). Writes ``rgb_report.json``.
    """

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.jpg.*.tmp"):  # leftovers of a killed run
        stale.unlink(missing_ok=True)
    if isinstance(box_source, str):
        if box_source == "skeleton":
            detector: PersonDetector | None = None
        elif box_source == "hog":
            detector = HOGPersonDetector()
        else:
            raise ValueError(f"box_source must be 'skeleton', 'hog' or a PersonDetector, got {box_source!r}")
    else:
        detector = box_source
    report = ExtractReport(
        out_dir=str(out),
        total=len(samples),
        settings={
            "frames": frames,
            "frame_size": list(frame_size),
            "box_source": box_source if isinstance(box_source, str) else type(box_source).__name__,
            "margin": margin if margin is not None else (SKELETON_MARGIN if detector is None else DETECTOR_MARGIN),
            "jpeg_quality": jpeg_quality,
            "sampling": "floor((j + 0.5) * n / m)",
        },
    )
    todo: list[RGBJob] = []
    for job in samples:
        if not overwrite and (out / f"{job.name}.jpg").is_file():
            report.skipped_existing += 1
        else:
            todo.append(job)
    args = (str(out), frames, tuple(frame_size), detector, margin, jpeg_quality)
    bar = tqdm(total=len(todo), desc="rgb composites", unit="video", disable=not progress)

    def record(result: tuple[str, str, Any]) -> None:
        name, status, detail = result
        if status == "written":
            report.written += 1
            report.samples[name] = detail
        else:
            report.failures[name] = {"reason": status, "message": str(detail)}
        bar.update(1)

    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                record(_run_job(job, *args))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_run_job, job, *args) for job in todo]
                for fut in as_completed(futures):
                    record(fut.result())
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
        report.write()
    return report


def folder_names(image_dir: str | Path, suffix: str = ".jpg") -> list[str]:
    """Names of every ``<name><suffix>`` file in ``image_dir`` (hidden/temporary files excluded), sorted."""
    d = Path(image_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    names = sorted(p.name[: -len(suffix)] for p in d.iterdir() if p.name.endswith(suffix) and not p.name.startswith(".") and p.is_file())
    if not names:
        raise FileNotFoundError(f"no *{suffix} images in {d} (make them with `mmcl extract rgb`)")
    return names


# ---------------------------------------------------------------------------- job builders
def _index_videos(video_dir: Path, suffix: str) -> dict[str, Path]:
    """name -> path for every ``*<suffix>`` below ``video_dir`` (NTU ships per-setup subfolders)."""
    out: dict[str, Path] = {}
    for root, _dirs, files in os.walk(video_dir):
        for f in files:
            if f.endswith(suffix):
                out.setdefault(f[: -len(suffix)], Path(root) / f)
    return out


def ntu_rgb_jobs(
    samples: Iterable[tuple[str, np.ndarray | None]],
    video_dir: str | Path,
    *,
    video_suffix: str = "_rgb.avi",
    names: Sequence[str] | None = None,
) -> list[RGBJob]:
    """Jobs for NTU samples given as ``(name, colours T×M×V×2)`` pairs (a prepared folder's
    :meth:`~mmcl.datasets.prepared.PreparedSource.sample_colors`, memory-mapped: no copy until a
    worker reads them).

    Videos are looked up as ``<video_dir>/<name><video_suffix>``, else anywhere below ``video_dir``;
    a missing video stays a job and is reported as ``missing_video``. ``names`` restricts to a subset.
    """
    vdir = Path(video_dir)
    wanted = None if names is None else set(names)
    index: dict[str, Path] | None = None
    jobs = []
    for name, colors in samples:
        if wanted is not None and name not in wanted:
            continue
        if colors is None:
            raise ValueError(f"{name}: no colour joints prepared; prepare NTU with colour joints (mmcl prepare ntu) or use a detector")
        path = vdir / f"{name}{video_suffix}"
        if not path.is_file():
            if index is None:
                index = _index_videos(vdir, video_suffix)
            path = index.get(name, path)
        jobs.append(RGBJob(name, path, colors, is_two_person_ntu(name)))
    return jobs


def video_rgb_jobs(
    videos: str | Path | Sequence[str | Path],
    *,
    pattern: str = "*",
    two_person: bool | Callable[[str], bool] = False,
    name_suffix: str = "",
) -> list[RGBJob]:
    """Detector jobs for arbitrary videos: a folder (files matching ``pattern``) or a list of files.

    The sample name is the file stem without ``name_suffix`` (e.g. "_rgb").
    """
    if isinstance(videos, (str, Path)) and Path(videos).is_dir():
        files = sorted(p for p in Path(videos).glob(pattern) if p.is_file())
    else:
        files = [Path(v) for v in ([videos] if isinstance(videos, (str, Path)) else videos)]
    jobs = []
    for f in files:
        name = f.stem[: -len(name_suffix)] if name_suffix and f.stem.endswith(name_suffix) else f.stem
        tp = two_person(name) if callable(two_person) else two_person
        jobs.append(RGBJob(name, f, None, tp))
    return jobs


def colors_from_skeleton_file(path: str | Path, max_bodies: int = 2) -> np.ndarray:
    """Colour joints F×M×25×2 indexed by ORIGINAL video frame, from a raw NTU ``.skeleton`` file.

    Uses the package's NTU parser; body-less frames (dropped by the parser) stay zero, so
    skeleton frame t is video frame t. Bodies are taken in order of first appearance (no
    denoising: prefer the prepared ``colors_{split}.npy`` for multi-body samples).
    """

    parsed = parse_skeleton_file(path)
    total = parsed.num_frames + len(parsed.dropped_frames)
    dropped = set(parsed.dropped_frames)
    kept_to_orig = np.array([f for f in range(total) if f not in dropped], dtype=np.int64)
    out = np.zeros((total, max_bodies, 25, 2), dtype=np.float32)
    for m, body in enumerate(parsed.bodies[:max_bodies]):
        out[kept_to_orig[np.asarray(body.frames)], m] = body.colors
    return out
