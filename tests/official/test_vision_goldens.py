"""Backbone res2..res5 and every pixel-decoder output of the reference fixtures, within the atol
that golden.json gives each tensor: first with our modules loaded straight from the released
format, then through a converted model directory and FindModel (what users run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from find_ros.model.convert import BACKBONE, PIXEL_DECODER, import_find, read_checkpoint
from find_ros.model.transformer_fpn import TransformerFPN
from find_ros.model.xdecoder_focalnet import PIXEL_MEAN, PIXEL_STD, XDecoderFocalNet

from .conftest import atol, golden_meta, language_dir, network_input

BACKBONE_GOLDENS = [f"A/backbone/res{i}" for i in (2, 3, 4, 5)]
NECK_GOLDENS = ["A/pixel_decoder/multi_scale_0", "A/pixel_decoder/multi_scale_1", "A/pixel_decoder/multi_scale_2",
                "A/pixel_decoder/mask_features"]


def normalised(rgb: np.ndarray, mean=PIXEL_MEAN, std=PIXEL_STD) -> torch.Tensor:
    x = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def assert_goldens(directory: Path, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    golden = load_file(str(directory / "golden.safetensors"))
    meta = golden_meta(directory)
    worst = {}
    for name, value in outputs.items():
        assert value.shape == golden[name].shape, name
        worst[name] = float((value - golden[name]).abs().max())
        assert worst[name] <= atol(meta, name), f"{name}: max |ours - golden| = {worst[name]:.3g} > {atol(meta, name)}"
    return worst


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_modules_loaded_from_the_released_format_match_the_goldens(fixture_dir: Path) -> None:
    from find_ros.model.convert import OfficialSettings, infer_layout, read_settings

    settings, _ = read_settings(fixture_dir / "config.yaml")
    state = read_checkpoint(fixture_dir / "checkpoint.pt").state
    layout = infer_layout(state, settings)
    backbone = XDecoderFocalNet(layout.backbone).eval()
    backbone.load_state_dict(_strip(state, BACKBONE), strict=True)
    neck = TransformerFPN(layout.backbone.channels, layout.conv_dim, layout.mask_dim, layout.encoder_layers,
                          settings.num_heads, layout.ffn_dim).eval()
    neck.load_state_dict(_strip(state, PIXEL_DECODER), strict=True)
    assert settings != OfficialSettings()  # the fixture's reduced sizes were read, not the defaults
    with torch.no_grad():
        maps = backbone(normalised(network_input(fixture_dir)))
        levels, pixel = neck(maps)
    assert_goldens(fixture_dir, dict(zip(BACKBONE_GOLDENS, maps)) | dict(zip(NECK_GOLDENS, [*levels, pixel])))


@pytest.fixture
def converted(fixture_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    import_find(fixture_dir / "checkpoint.pt", out, config_path=fixture_dir / "config.yaml",
                language=str(language_dir(fixture_dir)))
    return out


def test_converted_model_directory_matches_the_goldens(fixture_dir: Path, converted: Path) -> None:
    from find_ros.model import FindModel

    model = FindModel.from_pretrained(converted, device="cpu")
    assert model.config.neck == "transformer_fpn" and model.vision_encoder.family == "xdecoder_focalnet"
    rgb = network_input(fixture_dir)
    vision = model.vision_encoder
    with torch.no_grad():
        maps = vision(normalised(rgb, vision.pixel_mean, vision.pixel_std))
        levels, pixel = model.neck(maps, rgb.shape[:2])
    assert_goldens(fixture_dir, dict(zip(BACKBONE_GOLDENS, maps)) | dict(zip(NECK_GOLDENS, [*levels, pixel])))
    # A converted model saves and reloads like any other (vision/ travels with it).
    again = FindModel.from_pretrained(model.save_pretrained(converted.parent / "saved", include_encoders=True), device="cpu")
    assert torch.equal(again.encode_image(rgb).pixel, model.encode_image(rgb).pixel)


def test_focal_variant_equals_transformers_focalnet(fixture_dir: Path) -> None:
    """README §4: the FocalNet variant is HF FocalNetModel (conv embed, post-LN, layerscale,
    normalised modulator) plus norm0..3. Our own module and HF's, on the same weights, agree."""
    from find_ros.model.convert import infer_layout, read_settings

    settings, _ = read_settings(fixture_dir / "config.yaml")
    state = read_checkpoint(fixture_dir / "checkpoint.pt").state
    spec = infer_layout(state, settings).backbone
    if spec.variant != "focal":
        assert any(".dw1." in k for k in state)  # the depthwise variant has no HF counterpart
        return
    from transformers import FocalNetConfig, FocalNetModel

    hf = FocalNetModel(FocalNetConfig(
        embed_dim=spec.embed_dim, depths=list(spec.depths), focal_levels=list(spec.focal_levels),
        focal_windows=list(spec.focal_windows), mlp_ratio=spec.mlp_ratio, use_conv_embed=True,
        use_post_layernorm=True, use_layerscale=True, normalize_modulator=True,
        use_post_layernorm_in_modulation=False, layerscale_value=1.0,
    )).eval()
    mapped = {}
    for key, value in _strip(state, BACKBONE).items():
        if key.startswith("norm"):
            continue
        key = key.replace("patch_embed.proj", "embeddings.patch_embeddings.projection").replace("patch_embed.norm", "embeddings.norm")
        key = key.replace("layers.", "encoder.stages.", 1).replace(".blocks.", ".layers.")
        key = key.replace("modulation.f.", "modulation.projection_in.").replace("modulation.h.", "modulation.projection_context.")
        key = key.replace("modulation.proj.", "modulation.projection_out.").replace("downsample.proj", "downsample.projection")
        mapped[key] = value
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    assert not unexpected and all(k.startswith("layernorm.") for k in missing), (missing, unexpected)
    ours = XDecoderFocalNet(spec).eval()
    ours.load_state_dict(_strip(state, BACKBONE))
    pixels = normalised(network_input(fixture_dir))
    with torch.no_grad():
        mine = ours(pixels)
        hidden, dims = hf.embeddings(pixels)
        for s, stage in enumerate(hf.encoder.stages):
            hidden, before, out_dims = stage(hidden, dims)
            theirs = getattr(ours, f"norm{s}")(before).transpose(1, 2).reshape(mine[s].shape)
            assert torch.allclose(mine[s], theirs, atol=1e-5), f"stage {s}"
            dims = (out_dims[-2], out_dims[-1])
