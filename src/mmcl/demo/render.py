"""The demo world's second modality: the RGB composite of each sample (the paper's Eq. 2 image:
uniformly sampled person frames side by side) and the stand-in answerer that looks at it.

:func:`answer_holding_object` is a pixel rule standing in for a vision-language model; it answers
:data:`~mmcl.demo.world.HOLDING_OBJECT_QUESTION` from the rendered object colours.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmcl.demo.kinematics import JOINT
from mmcl.demo.world import SyntheticData, random_colour
from mmcl.io import atomic_write

__all__ = ["render_composite", "write_composites", "answer_holding_object", "answer_sentence", "synthetic_text_features", "ANSWER_SENTENCES"]

# ----------------------------------------------------------------------------------------
# Rendering (RGB composite, paper Eq. 2)
# ----------------------------------------------------------------------------------------

_FOCAL = 1050.0  # pixels, a Kinect-v2-like colour camera
_LIMBS = (  # (joint a, joint b, part, thickness in metres)
    ("left hip", "left knee", "pants", 0.13), ("left knee", "left ankle", "pants", 0.10),
    ("right hip", "right knee", "pants", 0.13), ("right knee", "right ankle", "pants", 0.10),
    ("left ankle", "left foot", "shoe", 0.07), ("right ankle", "right foot", "shoe", 0.07),
    ("spine base", "spine shoulder", "shirt", 0.26), ("spine shoulder", "neck", "skin", 0.09),
    ("left shoulder", "left elbow", "shirt", 0.09), ("left elbow", "left wrist", "skin", 0.07),
    ("right shoulder", "right elbow", "shirt", 0.09), ("right elbow", "right wrist", "skin", 0.07),
    ("left wrist", "left hand", "skin", 0.07), ("right wrist", "right hand", "skin", 0.07),
    ("left hand", "left hand tip", "skin", 0.05), ("right hand", "right hand tip", "skin", 0.05),
    ("left hand", "left thumb", "skin", 0.03), ("right hand", "right thumb", "skin", 0.03),
)


def _background(seed: int, size: tuple[int, int], floor_row: float) -> Image.Image:
    """A low-saturation textured room: blotchy wall, tiled floor, fine grain."""
    w, h = size
    rng = np.random.default_rng(seed)
    wall = random_colour(rng, (0.0, 0.25), (0.45, 0.85))
    floor = random_colour(rng, (0.0, 0.25), (0.35, 0.7))
    coarse = (rng.random((max(h // 12, 2), max(w // 12, 2))) * 255).astype(np.uint8)
    blotch = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.float64)
    blotch = blotch[..., None] / 255.0
    rows = np.arange(h)[:, None, None]
    img = np.where(rows < floor_row, wall, floor) * (0.85 + 0.3 * blotch)
    cols = np.arange(w)[None, :, None]
    tile = max(int(rng.integers(10, 24)), 4)
    grout = (rows >= floor_row) & (((cols + rows) % tile == 0) | (rows % tile == 0))
    img = np.where(grout, img * 0.8, img)
    img = img + rng.normal(0.0, 6.0, size=(h, w, 1))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _project(p: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (...×3) to image-plane pixels (...×2, v down)."""
    z = np.maximum(p[..., 2], 0.3)
    return np.stack([_FOCAL * p[..., 0] / z, -_FOCAL * p[..., 1] / z], -1)


def render_composite(data: SyntheticData, i: int, *, frames: int = 5,
                     frame_size: tuple[int, int] = (128, 96)) -> Image.Image:
    """Render sample ``i`` as the paper's temporal RGB composite (Eq. 2).

    ``frames`` frames are sampled uniformly over the valid length; each is drawn as a simple
    person (thick limbs, head, torso; the held object in the right hand when the sample holds
    one) on a textured background, cropped to the person box (union over the sampled frames,
    like a detector box, so motion stays visible) and fitted to ``frame_size`` (w, h). The
    frames are concatenated left to right: the image is always ``(frames·w) × h`` RGB.
    """
    fw, fh = frame_size
    length = int(data.lengths[i])
    t_idx = np.minimum(((np.arange(frames) + 0.5) * length / frames).astype(int), length - 1)
    pts = data.x[i, :, :, :, 0][:, t_idx].transpose(1, 2, 0).astype(np.float64)  # frames×V×3
    uv = _project(pts)
    depth = np.maximum(pts[..., 2], 0.3)
    px_per_m = _FOCAL / depth  # frames×V
    head_r = 0.11 * px_per_m[:, JOINT["head"]]
    lo = np.minimum(uv.min(axis=(0, 1)), (uv[:, JOINT["head"]] - head_r[:, None]).min(0))
    hi = np.maximum(uv.max(axis=(0, 1)), (uv[:, JOINT["head"]] + head_r[:, None]).max(0))
    centre, extent = (lo + hi) / 2, (hi - lo) * 1.15 + 10
    scale = min(fw / extent[0], fh / extent[1])  # fit the box, keep the aspect ratio
    r = data.render
    rgb = lambda c: tuple(int(v) for v in c)  # noqa: E731
    colours = {"skin": rgb(r.skin_color[i]), "shirt": rgb(r.shirt_color[i]),
               "pants": rgb(r.pants_color[i]), "shoe": (45, 42, 40)}
    to_px = lambda q: (q - centre) * scale + np.array([fw / 2, fh / 2])  # noqa: E731
    floor_v = to_px(np.stack([uv[..., 0].mean(), uv[..., 1].max()]))[1]
    bg = _background(int(r.background_seed[i]), frame_size, floor_v)
    out = Image.new("RGB", (frames * fw, fh))
    for f in range(frames):
        im = bg.copy()
        d = ImageDraw.Draw(im)
        q = to_px(uv[f])
        ppm = px_per_m[f] * scale
        # Far limbs first so the near side occludes them.
        order = sorted(_LIMBS, key=lambda l: -(pts[f, JOINT[l[0]], 2] + pts[f, JOINT[l[1]], 2]))
        for a, b, part, thick in order:
            ja, jb = JOINT[a], JOINT[b]
            wdt = max(int(round(thick * (ppm[ja] + ppm[jb]) / 2)), 1)
            d.line([tuple(q[ja]), tuple(q[jb])], fill=colours[part], width=wdt)
            for j in (ja, jb):
                rr = wdt / 2
                d.ellipse([q[j][0] - rr, q[j][1] - rr, q[j][0] + rr, q[j][1] + rr], fill=colours[part])
        hr = 0.11 * ppm[JOINT["head"]]
        hx, hy = q[JOINT["head"]]
        d.ellipse([hx - hr, hy - hr * 1.15, hx + hr, hy + hr * 1.15], fill=colours["skin"])
        if r.object_kind[i] > 0:
            # The object sits in the right hand, between the palm and the finger tips.
            c = (q[JOINT["right hand"]] + q[JOINT["right hand tip"]]) / 2
            hgt = max(float(r.object_size[i]) * ppm[JOINT["right hand"]], 6.0)
            wid = max(hgt * (0.65 if r.object_kind[i] == 1 else 0.5), 5.0)
            d.rectangle([c[0] - wid / 2, c[1] - hgt / 2, c[0] + wid / 2, c[1] + hgt / 2],
                        fill=rgb(r.object_color[i]))
        out.paste(im, (f * fw, 0))
    return out


def write_composites(data: SyntheticData, out_dir: str | os.PathLike, *, frames: int = 5,
                     frame_size: tuple[int, int] = (128, 96), quality: int = 92,
                     indices: Iterable[int] | None = None) -> list[Path]:
    """Write ``<out_dir>/<name>.jpg`` for each sample; returns the paths newly written.

    Existing files are skipped (resumable), and each file appears atomically (temp file in the
    same folder, then ``os.replace``), so an interrupted run never leaves a truncated image.
    JPEG chroma subsampling is off so small coloured objects keep their colour.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(len(data)) if indices is None else indices:
        path = out / f"{data.names[i]}.jpg"
        if path.exists():
            continue
        img = render_composite(data, i, frames=frames, frame_size=frame_size)
        atomic_write(path, lambda fh, img=img: img.save(fh, format="JPEG", quality=quality, subsampling=0))
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------
# Built-in answerer (stands in for a multimodal LLM on these synthetic images)
# ----------------------------------------------------------------------------------------

_OBJ_MIN_SAT, _OBJ_MIN_VAL = 200, 110  # HSV thresholds (0-255) of "object-coloured" pixels
_OBJ_FRACTION = 3e-4  # fraction of object pixels at which p(yes) = 0.5 (~18 px of 640×96)


def answer_holding_object(image: Image.Image) -> tuple[str, float]:
    """Answer :data:`HOLDING_OBJECT_QUESTION` for a synthetic composite, from pixels only.

    Why it works: the renderer reserves strongly saturated colours for held objects; skin,
    clothes and background stay below HSV saturation ~0.6 (JPEG noise adds ~0.15). So we count
    bright (V >= 0.43), strongly saturated (S >= 0.78) pixels and map their share of the image
    through a logistic on the log-fraction (p = 0.5 at 0.03 % of the image, ~18 px of a 640×96
    composite; objects cover ~200 px). Works on resized and JPEG-compressed images.
    Returns ``("yes" | "no", probability of yes)``.
    """
    hsv = np.asarray(image.convert("RGB").convert("HSV"))
    mask = (hsv[..., 1] >= _OBJ_MIN_SAT) & (hsv[..., 2] >= _OBJ_MIN_VAL)
    frac = float(mask.mean())
    z = 2.5 * (np.log(frac + 1e-5) - np.log(_OBJ_FRACTION))
    p_yes = float(1.0 / (1.0 + np.exp(-z)))
    return ("yes" if p_yes >= 0.5 else "no"), p_yes


#: What the stand-in answerer "says" (its yes/no as a sentence, for the FRM's sentence-embedding kind).
ANSWER_SENTENCES = {"yes": "Yes, the person is holding an object in the hand.", "no": "No, the person is not holding anything."}


def _answer(image: Image.Image | str | os.PathLike) -> tuple[str, float]:
    """:func:`answer_holding_object` of a PIL image or an image file."""
    if isinstance(image, Image.Image):
        return answer_holding_object(image)
    with Image.open(image) as opened:
        return answer_holding_object(opened)


def answer_sentence(image: Image.Image | str | os.PathLike) -> str:
    """The answerer's reply to :data:`HOLDING_OBJECT_QUESTION` as a sentence (:data:`ANSWER_SENTENCES`)."""
    return ANSWER_SENTENCES[_answer(image)[0]]


def synthetic_text_features(images: Iterable[Image.Image | str | os.PathLike]) -> np.ndarray:
    """FRM "answer probabilities" features: N×2 float32 ``[p_yes, p_no]`` per image.

    Accepts PIL images or image paths (e.g. the files from :func:`write_composites`).
    """
    rows = []
    for im in images:
        _, p = _answer(im)
        rows.append((p, 1.0 - p))
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)
