"""Dataset statistics in the shape of the paper's FIND-Bench table, plus the engine's own counters."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any


def table_stats(doc: dict[str, Any]) -> dict[str, Any]:
    """Images, captions, entities, entities per image (paper's Table), from a FIND-Bench document."""
    n_images = len(doc["images"])
    n_captions = len(doc["annotations"])
    phrases = [p for a in doc["annotations"] for p in a["phrase"]]
    n_visual = sum(1 for p in phrases if "reference" in p)
    return {
        "images": n_images,
        "captions": n_captions,
        "entities": len(phrases),
        "entities_per_image": round(len(phrases) / n_images, 3) if n_images else 0.0,
        "entities_per_caption": round(len(phrases) / n_captions, 3) if n_captions else 0.0,
        "visual_entities": n_visual,
    }


def engine_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters over the caption stage's work records."""
    status = Counter(r["status"] for r in records)
    reasons: Counter = Counter()
    causes: Counter = Counter()
    for r in records:
        reasons.update(x["reason"] for x in r.get("rejects", []))
        causes.update(r.get("retry_causes", {}))
    return {
        "images_captioned": status.get("ok", 0),
        "images_rejected": status.get("rejected", 0),
        "images_without_segments": status.get("no_segments", 0),
        "llm_calls": sum(r.get("llm_calls", 0) for r in records),
        "rejected_answers": sum(reasons.values()),
        "reject_reasons": dict(sorted(reasons.items())),
        "transport_retries": dict(sorted(causes.items())),
    }


def print_table(stats: dict[str, Any], title: str = "FIND-Bench data engine") -> None:
    """The headline numbers as a table on stderr (stdout stays free for machine-readable output)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    cols = ["images", "captions", "entities", "entities_per_image", "visual_entities"]
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    t.add_row(*(str(stats.get(c, "")) for c in cols))
    console = Console(file=sys.stderr)
    console.print(t)
    extra = {k: stats[k] for k in ("images_rejected", "llm_calls", "rejected_answers", "reject_reasons",
                                    "transport_retries") if k in stats}
    console.print(extra)
