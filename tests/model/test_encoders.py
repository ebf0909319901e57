"""Every supported encoder family loads through the real from_pretrained path; the packaged MiniLM
loads offline and the chosen hidden layer is the one used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from find_ros.model import FindModel
from find_ros.model.encoders import (
    HFLanguageEncoder,
    HFVisionEncoder,
    LanguageEncoder,
    VisionEncoder,
    load_language_encoder,
    load_vision_encoder,
)
from find_ros.model.tiny import build_tiny_model, save_tiny_language, save_tiny_vision


@pytest.mark.parametrize("family, strides", [("focalnet", (4, 8, 16, 32)), ("dinov2", (14,)), ("clip", (8,)), ("siglip", (8,))])
def test_vision_families_load_and_feed_a_full_model(tmp_path, family, strides) -> None:
    encoder = load_vision_encoder(str(save_tiny_vision(family, tmp_path / "enc")))
    assert isinstance(encoder, VisionEncoder) and isinstance(encoder, HFVisionEncoder)
    assert encoder.family == family and encoder.strides == strides
    assert all(not p.requires_grad for p in encoder.parameters())
    maps = encoder(torch.randn(1, 3, 64, 96))
    assert [m.shape[1] for m in maps] == list(encoder.channels)
    for m, s in zip(maps, strides):  # each map covers the whole input at its stride (ViTs: nearest patch grid)
        assert m.shape[-2:] == (round(64 / s), round(96 / s))
    path = build_tiny_model(tmp_path / "model", vision=family)
    model = FindModel.from_pretrained(path, device="cpu")
    frame = model.encode_image(np.zeros((30, 50, 3), dtype=np.uint8))
    assert frame.pixel.shape == (1, model.config.mask_dim, 16, 16)
    assert model.ground(frame, "a cup")[0].entities[0].mask.shape == (30, 50)


@pytest.mark.parametrize("family, kind", [("bert", "encoder"), ("clip_text", "clip_text"), ("gpt2", "causal"),
                                          ("qwen2", "causal"), ("llama", "causal")])
def test_language_families_load_and_feed_a_full_model(tmp_path, family, kind) -> None:
    path = build_tiny_model(tmp_path / "model", language=family)
    model = FindModel.from_pretrained(path, device="cpu")
    encoder = model.language_encoder
    assert isinstance(encoder, LanguageEncoder) and encoder.family == kind
    assert all(not p.requires_grad for p in encoder.parameters())
    assert encoder.tokenizer.pad_token is not None  # supplied for causal tokenizers that lack one
    frame = model.encode_image(np.zeros((32, 32, 3), dtype=np.uint8))
    result = model.ground(frame, "the red mug left of <0>", [np.full((8, 8, 3), 200, dtype=np.uint8)])[0]
    assert [e.label for e in result.entities] == ["the red mug left of <0>", "<0>"]


def test_one_clip_checkpoint_serves_both_towers(tmp_path) -> None:
    from find_ros.model.tiny import save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    assert load_vision_encoder(str(clip)).family == "clip"
    assert load_language_encoder(str(clip)).family == "clip_text"


def _reference_hidden_states(source: str, text: str) -> tuple:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    reference = AutoModel.from_pretrained(source, local_files_only=True).eval()
    with torch.no_grad():
        return reference(**tokenizer([text], return_tensors="pt"), output_hidden_states=True).hidden_states


def test_packaged_minilm_loads_offline_and_honours_the_layer() -> None:
    from find_ros.model.encoders import resolve_model_source

    text = "the red mug left of the laptop"
    hidden = _reference_hidden_states(resolve_model_source("all-MiniLM-L6-v2"), text)
    default = load_language_encoder("all-MiniLM-L6-v2")
    assert default.family == "encoder" and default.layer == -1 and default.num_layers == 6 and default.hidden_size == 384
    assert torch.allclose(default([text], 77).tokens, hidden[-1], atol=1e-5)
    third = load_language_encoder("all-MiniLM-L6-v2", layer=3)
    got = third([text], 77)
    assert torch.allclose(got.tokens, hidden[3], atol=1e-5)
    assert not torch.allclose(got.tokens, hidden[-1], atol=1e-3)
    assert torch.allclose(got.sentence, hidden[3].mean(1), atol=1e-5)  # mean over tokens


def test_causal_default_layer_is_minus_twelve(tmp_path) -> None:
    source = str(save_tiny_language("gpt2", tmp_path / "gpt2", num_layers=13))
    encoder = load_language_encoder(source)
    assert isinstance(encoder, HFLanguageEncoder) and encoder.family == "causal" and encoder.layer == -12
    hidden = _reference_hidden_states(source, "a red mug near the table")
    assert torch.allclose(encoder(["a red mug near the table"], 77).tokens, hidden[-12], atol=1e-5)
    assert not torch.allclose(hidden[-12], hidden[-1], atol=1e-3)


def test_out_of_range_layer_and_unknown_family_are_clear_errors(tmp_path) -> None:
    short = str(save_tiny_language("llama", tmp_path / "llama", num_layers=2))
    with pytest.raises(ValueError, match="language layer -12 is out of range for a 2-layer llama model"):
        load_language_encoder(short)
    with pytest.raises(ValueError, match="model_type 'llama'; supported"):
        load_vision_encoder(short)
    with pytest.raises(FileNotFoundError, match="vision model directory not found"):
        load_vision_encoder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="nothing is downloaded at run time"):
        load_language_encoder("some-org/not-in-the-cache")
