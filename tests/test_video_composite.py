"""RGB temporal image: generated videos (known boxes) and the real NTU sample (video + skeleton)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from PIL import Image  # noqa: E402

from mmcl.datasets import PreparedSource, write_dataset  # noqa: E402
from mmcl.modalities.composite import (  # noqa: E402
    FRAMES_PER_IMAGE,
    REPORT_FILE,
    TILE_SIZE,
    RGBJob,
    colors_from_skeleton_file,
    compose_sample,
    extract_rgb,
    ntu_rgb_jobs,
    uniform_sample,
)
from mmcl.modalities.video import iter_frames, probe_video, write_video  # noqa: E402

W, H, T = 160, 120, 24
RED, BLUE = (220, 30, 30), (30, 30, 220)
SMALL_TILE = (32, 64)


def rect_at(t: int, k: int = 0) -> tuple[int, int, int, int]:
    """Known box (x1, y1, x2, y2) of "person" k at frame t: moves right 2 px per frame."""
    x = 10 + 2 * t + 70 * k
    return x, 30, x + 20, 90


def make_video(path: Path, persons: int = 1, visible: range | None = None) -> np.ndarray:
    """Write a clip and return its colour joints T×2×25×2 (zeros where the person is absent)."""
    visible = range(T) if visible is None else visible
    frames, colors = [], np.zeros((T, 2, 25, 2), np.float32)
    rng = np.random.default_rng(1)
    for t in range(T):
        f = np.full((H, W, 3), 200, np.uint8)
        if t in visible:
            for k in range(persons):
                x1, y1, x2, y2 = rect_at(t, k)
                f[y1:y2, x1:x2] = RED if k == 0 else BLUE
                colors[t, k, :, 0] = rng.uniform(x1 + 2, x2 - 2, 25)
                colors[t, k, :, 1] = rng.uniform(y1 + 2, y2 - 2, 25)
                colors[t, k, :2] = [[x1, y1], [x2, y2]]  # joints span exactly the known box
        frames.append(f)
    write_video(path, frames, fps=10)
    return colors


def test_uniform_sample_formula() -> None:
    assert uniform_sample(10, 5) == [1, 3, 5, 7, 9]
    assert uniform_sample(103, 5) == [10, 30, 51, 72, 92]
    assert uniform_sample(3, 5) == [0, 0, 1, 2, 2]  # repeats keep the composite size fixed
    assert uniform_sample(0, 5) == []


def test_iter_frames_decodes_only_requested(tmp_path: Path) -> None:
    make_video(tmp_path / "v.mp4")
    info = probe_video(tmp_path / "v.mp4")
    assert (info.width, info.height) == (W, H)
    got = list(iter_frames(tmp_path / "v.mp4", [5, 2, 5, 999]))
    assert [i for i, _ in got] == [2, 5] and got[0][1].shape == (H, W, 3)
    x1, y1, x2, y2 = rect_at(5)
    assert got[1][1][(y1 + y2) // 2, (x1 + x2) // 2, 0] > 150  # the red rectangle is where it should be


def test_skeleton_composite_skips_absent_frames(tmp_path: Path) -> None:
    colors = make_video(tmp_path / "v.mp4", visible=range(4, 19))
    res = compose_sample(RGBJob("x", tmp_path / "v.mp4", colors), frame_size=SMALL_TILE)
    person = list(range(4, 19))
    assert res.person_frames == 15
    assert res.frames == [person[i] for i in uniform_sample(15, FRAMES_PER_IMAGE)]
    assert res.image.shape == (64, 32 * 5, 3)
    for t, box in zip(res.frames, res.boxes):
        x1, y1, x2, y2 = rect_at(t)
        assert box.x1 <= x1 and box.y1 <= y1 and box.x2 >= x2 and box.y2 >= y2
        assert abs(box.width / box.height - 0.5) < 1e-6 or box.height >= H - 1e-6
    for j in range(5):  # each tile shows the red "person" in its centre
        r, g, b = res.image[32, j * 32 + 16].astype(int)
        assert r > 150 and g < 100 and b < 100


def test_two_person_union(tmp_path: Path) -> None:
    colors = make_video(tmp_path / "v.mp4", persons=2)
    res = compose_sample(RGBJob("x", tmp_path / "v.mp4", colors, two_person=True), frame_size=SMALL_TILE)
    for t, box in zip(res.frames, res.boxes):
        assert box.x1 <= rect_at(t, 0)[0] and box.x2 >= rect_at(t, 1)[2]
    single = compose_sample(RGBJob("x", tmp_path / "v.mp4", colors, two_person=False), frame_size=SMALL_TILE)
    assert all(b.x2 < rect_at(t, 1)[0] + 1 for t, b in zip(single.frames, single.boxes))


def test_extract_report_resume_and_failures(tmp_path: Path) -> None:
    vids, out = tmp_path / "v", tmp_path / "out"
    vids.mkdir()
    jobs = []
    for i in range(3):
        colors = make_video(vids / f"ok{i}.mp4")
        jobs.append(RGBJob(f"ok{i}", vids / f"ok{i}.mp4", colors))
    jobs.append(RGBJob("empty", vids / "ok0.mp4", np.zeros((T, 2, 25, 2), np.float32)))
    jobs.append(RGBJob("gone", vids / "missing.mp4", np.ones((T, 2, 25, 2), np.float32)))
    (vids / "bad.mp4").write_bytes(b"not a video at all")
    jobs.append(RGBJob("bad", vids / "bad.mp4", np.ones((T, 2, 25, 2), np.float32)))

    rep = extract_rgb(jobs[:2], out, frame_size=SMALL_TILE, progress=False)
    assert rep.written == 2
    mtime = (out / "ok0.jpg").stat().st_mtime_ns
    (out / ".ok2.jpg.dead.tmp").write_bytes(b"partial")  # leftover of a killed run
    rep = extract_rgb(jobs, out, frame_size=SMALL_TILE, workers=2, progress=False)
    assert rep.skipped_existing == 2 and rep.written == 1
    assert (out / "ok0.jpg").stat().st_mtime_ns == mtime
    assert {n: f["reason"] for n, f in rep.failures.items()} == {
        "empty": "no_person", "gone": "missing_video", "bad": "unreadable"
    }
    assert rep.no_person == ["empty"]
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved["failure_counts"] == {"no_person": 1, "missing_video": 1, "unreadable": 1}
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_FILE, "ok0.jpg", "ok1.jpg", "ok2.jpg"])
    for i in range(3):
        assert Image.open(out / f"ok{i}.jpg").size == (32 * 5, 64)


def test_ntu_jobs_from_prepared_folder(tmp_path: Path) -> None:
    vids = tmp_path / "videos" / "nturgb+d_rgb"
    vids.mkdir(parents=True)
    names = ["S001C001P001R001A001", "S001C001P001R001A055"]
    colors = np.zeros((T, 2, 25, 2), np.float32)
    colors[:] = make_video(vids / f"{names[0]}_rgb.avi")
    x = np.ones((3, T, 25, 2), np.float32)
    write_dataset(tmp_path / "prep", [x, x], [0, 54], names, dataset="ntu60", layout="ntu25", num_classes=60,
                  benchmarks={"xsub": {"train": [], "test": [0, 1]}}, colors=[colors, colors])
    source = PreparedSource(tmp_path / "prep" / "xsub", "test")
    jobs = ntu_rgb_jobs(((n, source.sample_colors(i)) for i, n in enumerate(source.names)), tmp_path / "videos")
    assert [j.name for j in jobs] == names and [j.two_person for j in jobs] == [False, True]
    assert Path(jobs[0].video_path).is_file() and jobs[0].colors.shape == (T, 2, 25, 2)
    np.testing.assert_array_equal(jobs[1].colors, colors)
    rep = extract_rgb(jobs, tmp_path / "out", frame_size=SMALL_TILE, progress=False)
    assert rep.written == 1 and rep.failures[names[1]]["reason"] == "missing_video"


@pytest.mark.realdata
def test_real_ntu_sample(ntu_sample_dir: Path, tmp_path: Path) -> None:
    name = "S001C001P001R001A001"
    colors = colors_from_skeleton_file(ntu_sample_dir / f"{name}.skeleton")
    assert colors.shape == (103, 2, 25, 2)
    job = RGBJob(name, ntu_sample_dir / f"{name}_rgb.avi", colors, two_person=False)
    rep = extract_rgb([job], tmp_path, progress=False)
    assert rep.ok and rep.written == 1
    img = Image.open(tmp_path / f"{name}.jpg")
    assert img.size == (TILE_SIZE[0] * FRAMES_PER_IMAGE, TILE_SIZE[1]) and img.mode == "RGB"
    info = rep.samples[name]
    assert info["frames"] == uniform_sample(103, 5) and info["person_frames"] == 103
    for t, (x1, y1, x2, y2) in zip(info["frames"], info["boxes"]):
        pts = colors[t, 0]
        assert (pts[:, 0] >= x1).all() and (pts[:, 0] <= x2).all()
        assert (pts[:, 1] >= y1).all() and (pts[:, 1] <= y2).all()
        assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1080
