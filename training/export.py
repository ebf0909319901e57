"""Make a trained model directory self-contained and small enough to ship.

``FindModel.save_pretrained`` names the encoders as they were loaded (a packaged alias, or an
absolute directory). A model that lives in the repository must not point at a path on the
machine that trained it, yet copying a packaged language model (90 MB of MiniLM) would be waste.
So: a vision (or language) encoder loaded from a directory is copied into ``vision/``
(``language/``) and the config names it relatively; packaged names stay as they are.

Presence (``config.json``'s ``presence``, :mod:`find_ros.model.presence`) is fitted on these very
weights and read-out settings, so the export keeps the source's calibration only when it changes no
read-out setting, and never carries over the destination's (other weights); without one it says to
re-run ``python -m training.calibrate_presence --model OUT --write``.

    python -m training.export --model runs/default/model --out find_ros/default_model \
        --input-size 256 --visual-match-blend 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from find_ros.model import FindConfig
from find_ros.model.checkpoint import CONFIG_NAME, LANGUAGE_DIR, VISION_DIR, WEIGHTS_NAME, load_weights
from find_ros.model.encoders import PACKAGED_MODELS, resolve_model_source

# What a transformers model directory holds (configs, weights, tokenizer files) plus our
# pretraining.json record; anything else (caches, logs) stays behind.
_KEEP_SUFFIXES = (".json", ".safetensors", ".txt", ".model")
# Settings that change how a trained model is run, not what it learned.
INFERENCE_SETTINGS = {"input_size", "visual_match_blend"}


def _copy_encoder(source: str, target: Path) -> None:
    target.mkdir(parents=True)
    for f in sorted(Path(source).iterdir()):
        if f.is_file() and f.suffix in _KEEP_SUFFIXES:
            shutil.copy2(f, target / f.name)


def export_model(src: str | Path, dst: str | Path, **inference: Any) -> Path:
    """Copy model ``src`` to ``dst`` (replaced atomically) with directory encoders bundled.
    ``inference`` overrides read-out settings of the shipped config that training does not fix
    (``input_size``, ``visual_match_blend``); the weights are unchanged."""
    src, dst = Path(src), Path(dst)
    config = FindConfig.load(src / CONFIG_NAME)
    unknown = set(inference) - INFERENCE_SETTINGS
    if unknown:
        raise ValueError(f"not an inference setting: {', '.join(sorted(unknown))}")
    changed = {k: v for k, v in inference.items() if v is not None and v != getattr(config, k)}
    config = FindConfig(**{**dataclasses.asdict(config), **changed})
    if changed:
        config.presence = None  # calibrated under the old read-out settings
    load_weights(src / WEIGHTS_NAME)  # refuse to ship a corrupt file
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        shutil.copy2(src / WEIGHTS_NAME, staging / WEIGHTS_NAME)
        for attr, sub in (("vision_model", VISION_DIR), ("language_model", LANGUAGE_DIR)):
            name = getattr(config, attr)
            if name in PACKAGED_MODELS:
                continue
            source = resolve_model_source(name, src)
            if Path(source).is_dir():
                _copy_encoder(source, staging / sub)
                setattr(config, attr, sub)
        config.save(staging / CONFIG_NAME)
        # Keep what else the destination holds (the model card), replace the model files.
        for extra in (dst.iterdir() if dst.is_dir() else ()):
            if extra.name not in (WEIGHTS_NAME, CONFIG_NAME, VISION_DIR, LANGUAGE_DIR) and not (staging / extra.name).exists():
                shutil.copy2(extra, staging / extra.name) if extra.is_file() else shutil.copytree(extra, staging / extra.name)
        # mkdtemp makes 0700 directories; a shipped model is read by every user.
        for path in [staging, *staging.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        old = dst.with_name(f".{dst.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if dst.exists():
            dst.rename(old)
        staging.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="trained model directory (<output_dir>/model)")
    parser.add_argument("--out", required=True, help="destination, e.g. find_ros/default_model")
    parser.add_argument("--input-size", type=int, help="long side the shipped model runs at (default: as trained)")
    parser.add_argument("--visual-match-blend", type=float,
                        help="semantic share of a visual entity's proposal match (default: as trained, 0)")
    args = parser.parse_args(argv)
    try:
        out = export_model(args.model, args.out, input_size=args.input_size, visual_match_blend=args.visual_match_blend)
    except (ValueError, FileNotFoundError) as error:
        print(f"training.export: error: {error}", file=sys.stderr)
        return 2
    print(out)
    if FindConfig.load(out / CONFIG_NAME).presence is None:
        print(f"training.export: {out} has no presence calibration (entities fall back to the uncalibrated "
              f"'no object' decision); run: python -m training.calibrate_presence --model {out} --write",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
