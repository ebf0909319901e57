"""FIND-Bench data engine (paper section 3.1.2): entity-linked captions and visual references.

Command line: ``python -m training.data_engine --help``. Python API (imported lazily, so importing
this package stays cheap)::

    from training.data_engine import EngineConfig, OfflineBackend, ColorShapeEmbedder, run_engine
    summary = run_engine(EngineConfig(panoptic_json=..., images_dir=..., out=..., references=True),
                         OfflineBackend(), ColorShapeEmbedder())
    bench = load_find_bench(summary.out)

Modules, one idea each: ``inputs`` (COCO panoptic + captions + descriptions), ``panoptic`` (PNG ids),
``markup`` ([id]<text> rules and offsets), ``schema`` (FIND-Bench JSON writer side and reader),
``prompt``, ``backend`` (the interface), ``offline`` and ``chat`` (+ ``chat_client``) backends,
``embedders``, ``retrieval``, ``workfile`` (resumable, atomic files), ``stats``, ``engine``, ``cli``,
``toy`` (a tiny synthetic dataset).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EngineConfig": "engine",
    "RunSummary": "engine",
    "IncompleteRun": "engine",
    "run_engine": ("engine", "run"),
    "plan_engine": ("engine", "plan"),
    "load_dataset": "inputs",
    "Caption": "markup",
    "MarkupError": "markup",
    "parse_caption": "markup",
    "parse_response": "markup",
    "FindBench": "schema",
    "load_find_bench": "schema",
    "parse_find_bench": "schema",
    "CaptionBackend": "backend",
    "OfflineBackend": "offline",
    "ChatBackend": "chat",
    "ChatClient": "chat_client",
    "RetryPolicy": "chat_client",
    "SegmentEmbedder": "embedders",
    "ColorShapeEmbedder": "embedders",
    "FindModelEmbedder": "embedders",
    "nearest_in_other_images": "retrieval",
    "DataEngineError": "errors",
    "InputFormatError": "errors",
    "write_toy_dataset": "toy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = (target, name) if isinstance(target, str) else target
    return getattr(import_module(f".{module}", __name__), attr)
