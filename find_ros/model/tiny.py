"""Tiny random-weight encoders and models: for tests, benchmarks and the CLI's placeholder model.

Nothing can be downloaded here, so every supported encoder family can be instantiated as a tiny
transformers model with random weights, saved with ``save_pretrained`` and loaded back through the
real ``from_pretrained`` path. Random weights mean meaningless outputs: a model built here has
``trained=False`` in its config and every surface labels it UNTRAINED.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from find_ros.model.config import FindConfig, tiny_config
from find_ros.model.encoders import quiet_transformers, resolve_model_source

VISION_FAMILIES = ("focalnet", "dinov2", "clip", "siglip")
LANGUAGE_FAMILIES = ("bert", "clip_text", "gpt2", "qwen2", "llama")
MINILM = "all-MiniLM-L6-v2"
UNTRAINED_NAME = "untrained-tiny-v1"

def _minilm_tokenizer():  # noqa: ANN202 - a transformers tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_source(MINILM), local_files_only=True)


def _byte_tokenizer():  # noqa: ANN202
    """A byte-level BPE tokenizer (as GPT-2, Qwen2 and Llama 3 use) with no merges: one token per
    byte. It has no pad token, like the real ones; the loader must cope with that."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<unk>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")


def save_tiny_vision(family: str, path: str | Path, seed: int = 0, **sizes: Any) -> Path:
    """A random tiny vision model of ``family`` saved to ``path`` (a from_pretrained directory)."""
    import transformers as tf

    path = Path(path)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "focalnet":
            cfg = dict(embed_dim=16, depths=[1, 1, 1, 1], focal_levels=[2, 2, 2, 2], focal_windows=[3, 3, 3, 3])
            cfg.update(sizes)
            model = tf.FocalNetModel(tf.FocalNetConfig(**cfg))
        elif family == "dinov2":
            model = tf.Dinov2Model(tf.Dinov2Config(image_size=56, patch_size=14, **{**small, **sizes}))
        elif family == "clip":
            return save_tiny_clip(path, seed)
        elif family == "siglip":
            model = tf.SiglipVisionModel(tf.SiglipVisionConfig(image_size=32, patch_size=8, **{**small, **sizes}))
        else:
            raise ValueError(f"unknown vision family {family!r}; known: {', '.join(VISION_FAMILIES)}")
    with quiet_transformers():
        model.save_pretrained(path)
    return path


def save_tiny_clip(path: str | Path, seed: int = 0) -> Path:
    """A random two-tower CLIP (both towers in one directory, as real CLIP checkpoints are), with
    MiniLM's tokenizer so that it needs no download."""
    import transformers as tf

    path = Path(path)
    tokenizer = _minilm_tokenizer()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    text = dict(small, vocab_size=tokenizer.vocab_size, max_position_embeddings=77,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=dict(small, image_size=32, patch_size=8),
                                           projection_dim=16))
    with quiet_transformers():
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def save_tiny_language(family: str, path: str | Path, seed: int = 0, num_layers: int = 2) -> Path:
    """A random tiny language model of ``family`` with a tokenizer, saved to ``path``."""
    import transformers as tf

    path = Path(path)
    if family == "clip_text":
        return save_tiny_clip(path, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "bert":
            tokenizer = _minilm_tokenizer()
            model = tf.BertModel(tf.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                                               num_hidden_layers=num_layers, num_attention_heads=2))
        else:
            tokenizer = _byte_tokenizer()
            ids = dict(vocab_size=len(tokenizer), bos_token_id=1, eos_token_id=1)
            if family == "gpt2":
                model = tf.GPT2Model(tf.GPT2Config(n_embd=32, n_layer=num_layers, n_head=2, n_positions=128, **ids))
            elif family == "qwen2":
                model = tf.Qwen2ForCausalLM(tf.Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=num_layers,
                                                           num_attention_heads=2, num_key_value_heads=1, **ids))
            elif family == "llama":
                model = tf.LlamaForCausalLM(tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=num_layers,
                                                           num_attention_heads=2, num_key_value_heads=1, **ids))
            else:
                raise ValueError(f"unknown language family {family!r}; known: {', '.join(LANGUAGE_FAMILIES)}")
    with quiet_transformers():
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def build_tiny_model(path: str | Path, *, vision: str = "focalnet", language: str = "bert", seed: int = 0,
                     language_layer: int | None = None, **config_overrides: Any) -> Path:
    """A complete, self-contained tiny FIND model directory (random encoders under ``vision/`` and
    ``language/``, random interface). ``language`` is a family name or a model name/dir such as
    the packaged MiniLM (then referenced, not copied)."""
    from find_ros.model.find import FindModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_tiny_vision(vision, path / "vision", seed)
    if language in LANGUAGE_FAMILIES:
        save_tiny_language(language, path / "language", seed)
        language_ref = "language"
    else:
        language_ref = language
    if language_layer is None and language in ("gpt2", "qwen2", "llama"):
        language_layer = -2  # the causal default (-12) needs at least 11 layers
    config = tiny_config("vision", language_ref, language_layer=language_layer, **config_overrides)
    model = FindModel.from_config(config, base_dir=path, device="cpu", seed=seed)
    model.save_pretrained(path)
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("FIND_ROS_CACHE") or Path.home() / ".cache" / "find_ros")


def untrained_model_dir() -> Path:
    """The CLI's placeholder: a small random model (FocalNet-family vision, the packaged MiniLM),
    built once into the cache. Its outputs are plumbing checks, never results."""
    target = cache_dir() / UNTRAINED_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=UNTRAINED_NAME + ".", dir=target.parent))
    try:
        build_tiny_model(staging, vision="focalnet", language=MINILM, hidden_dim=64, num_heads=4, ffn_dim=128,
                         num_layers=3, num_object_queries=16, mask_dim=64, input_size=320, crop_size=96,
                         max_text_tokens=77, max_class_tokens=150)
        try:
            staging.rename(target)  # atomic: concurrent builders race benignly
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def find_t_config(vision_model: str, language_model: str, **overrides: Any) -> FindConfig:
    """FIND-T's interface sizes (the FindConfig defaults) at 640 px."""
    return FindConfig(vision_model=vision_model, language_model=language_model, **overrides)


def save_focalnet_tiny(path: str | Path, seed: int = 0) -> Path:
    """A random FocalNet-T (embed 96, depths 2-2-6-2, focal levels 3: the "lrf" variant X-Decoder
    and FIND-T use), for FIND-T-sized benchmarks."""
    return save_tiny_vision("focalnet", path, seed, embed_dim=96, depths=[2, 2, 6, 2], focal_levels=[3, 3, 3, 3],
                            focal_windows=[3, 3, 3, 3])
