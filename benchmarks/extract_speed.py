"""Throughput (samples/s) of the extra-modality pipelines: RGB composites, CNN features, BLIP text
features and feature-store writes. Synthetic inputs (generated videos, random-init models), plus
the real NTU sample when ../shared/data is present. Prints a table and writes JSON.

    python benchmarks/extract_speed.py [--out extract_speed.json] [--quick] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMCL_SHARED", ROOT.parent / "shared"))


def _videos(d: Path, n: int, w: int, h: int, t: int) -> list:
    from mmcl.modalities.composite import RGBJob
    from mmcl.modalities.video import write_video

    jobs = []
    for i in range(n):
        frames, colors = [], np.zeros((t, 2, 25, 2), np.float32)
        for k in range(t):
            f = np.full((h, w, 3), 180, np.uint8)
            x = w // 4 + k * 2
            f[h // 4 : 3 * h // 4, x : x + w // 8] = (200, 40, 40)
            colors[k, 0, :, 0] = np.linspace(x, x + w // 8, 25)
            colors[k, 0, :, 1] = np.linspace(h // 4, 3 * h // 4, 25)
            frames.append(f)
        write_video(d / f"v{i}.mp4", frames)
        jobs.append(RGBJob(f"v{i}", d / f"v{i}.mp4", colors))
    return jobs


def bench_rgb(tmp: Path, quick: bool) -> list[dict]:
    from mmcl.modalities.composite import RGBJob, colors_from_skeleton_file, extract_rgb

    rows = []
    n = 4 if quick else 12
    jobs = _videos(tmp, n, 640, 360, 60)
    for workers in (1, 2):
        out = tmp / f"rgb{workers}"
        rep = extract_rgb(jobs, out, workers=workers, progress=False)
        rows.append({"pipeline": f"rgb composite, synthetic 640x360x60f, {workers} proc", "samples": rep.written,
                     "seconds": rep.seconds, "samples_per_s": rep.written / rep.seconds})
    sample = SHARED / "data" / "ntu-sample"
    name = "S001C001P001R001A001"
    if (sample / f"{name}.skeleton").is_file():
        job = RGBJob(name, sample / f"{name}_rgb.avi", colors_from_skeleton_file(sample / f"{name}.skeleton"))
        reps = 2 if quick else 5
        t0 = time.perf_counter()
        for r in range(reps):
            extract_rgb([job], tmp / f"ntu{r}", progress=False)
        dt = time.perf_counter() - t0
        rows.append({"pipeline": "rgb composite, real NTU 1920x1080x103f", "samples": reps, "seconds": dt,
                     "samples_per_s": reps / dt})
    return rows


def _images(d: Path, n: int) -> list[str]:
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"img{i:04d}" for i in range(n)]
    for nm in names:
        Image.fromarray(rng.integers(0, 255, (320, 800, 3), dtype=np.uint8)).save(d / f"{nm}.jpg", quality=90)
    return names


def bench_cnn(tmp: Path, quick: bool, device: str) -> list[dict]:
    from mmcl.modalities.cnn import build_image_encoder, extract_cnn_features

    names = _images(tmp / "img", 8 if quick else 32)
    rows = []
    for model in ("resnet34", "inception_v3"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc, tf = build_image_encoder(model, None, allow_random=True, output="logits")
        s = extract_cnn_features(tmp / "img", names, tmp / f"cnn_{model}", enc, 8, device, progress=False)
        rows.append({"pipeline": f"cnn {model} logits, 800x320 -> 299 short side, {device}", "samples": s.written,
                     "seconds": s.seconds, "samples_per_s": s.written / s.seconds})
    return rows


def _tiny_blip(d: Path) -> Path:
    import torch
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "whether", "the", "people", "are", "holding",
             "objects", "?", "yes", "no", "[DEC]", "[ENC]"]
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizer(str(d / "vocab.txt"))
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    proc = transformers.BlipProcessor(transformers.BlipImageProcessor(size={"height": 64, "width": 64}), tok)
    cfg = transformers.BlipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=64, encoder_hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=2, pad_token_id=0, sep_token_id=3,
                         bos_token_id=tok.convert_tokens_to_ids("[DEC]")),
        vision_config=dict(image_size=64, patch_size=16, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=2),
    )
    torch.manual_seed(0)
    transformers.BlipForQuestionAnswering(cfg).save_pretrained(d)
    proc.save_pretrained(d)
    return d


def bench_text(tmp: Path, quick: bool, device: str) -> list[dict]:
    from mmcl.modalities.text import extract_text_features

    model = _tiny_blip(tmp / "blip")
    names = sorted(p.stem for p in (tmp / "img").glob("*.jpg"))
    rows = []
    for kind in ("answer_ids", "answer_probs", "decoder_hidden"):
        s = extract_text_features(tmp / "img", names, tmp / f"txt_{kind}", model, kind, batch_size=8,
                                  device=device, progress=False)
        rows.append({"pipeline": f"text tiny BLIP {kind}, {device}", "samples": s.written, "seconds": s.seconds,
                     "samples_per_s": s.written / s.seconds})
    return rows


def bench_store(tmp: Path, quick: bool) -> list[dict]:
    from mmcl.modalities.store import FeatureStore, check_store

    n, dim, chunk = (2000, 1000, 100) if quick else (20000, 1000, 200)
    x = np.random.default_rng(0).normal(size=(chunk, dim)).astype(np.float32)
    st = FeatureStore.create(tmp / "store", dim=dim, kind="bench")
    t0 = time.perf_counter()
    for i in range(0, n, chunk):
        st.append([f"s{j}" for j in range(i, i + chunk)], x)
    dt = time.perf_counter() - t0
    rows = [{"pipeline": f"store append {dim}-d float32, chunks of {chunk}", "samples": n, "seconds": dt,
             "samples_per_s": n / dt}]
    t0 = time.perf_counter()
    chk = check_store(tmp / "store", [f"s{j}" for j in range(n)])
    dt = time.perf_counter() - t0
    assert chk.ok
    rows.append({"pipeline": "store check (open + scan)", "samples": n, "seconds": dt, "samples_per_s": n / dt})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="extract_speed.json")
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", choices=["rgb", "cnn", "text", "store"])
    args = ap.parse_args(argv)
    import torch

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        todo = args.only or ["rgb", "cnn", "text", "store"]
        if "rgb" in todo:
            rows += bench_rgb(tmp, args.quick)
        if "cnn" in todo or "text" in todo:
            if "cnn" in todo:
                rows += bench_cnn(tmp, args.quick, args.device)
            else:
                _images(tmp / "img", 8 if args.quick else 32)
        if "text" in todo:
            rows += bench_text(tmp, args.quick, args.device)
        if "store" in todo:
            rows += bench_store(tmp, args.quick)
    width = max(len(r["pipeline"]) for r in rows)
    print(f"{'pipeline':<{width}}  {'samples':>7}  {'seconds':>8}  {'samples/s':>10}")
    for r in rows:
        print(f"{r['pipeline']:<{width}}  {r['samples']:>7}  {r['seconds']:>8.2f}  {r['samples_per_s']:>10.1f}")
    result = {
        "rows": rows,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "quick": args.quick,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
