"""``python -m training.data_engine``: build FIND-Bench-style entity captions for a COCO-panoptic dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import DataEngineError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.data_engine",
        description="FIND-Bench data engine: entity-linked captions ([id]<text>) and visual references "
        "for any COCO-panoptic dataset (paper section 3.1.2).",
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--coco-panoptic", type=Path, required=True, help="COCO panoptic JSON")
    io.add_argument("--images", type=Path, required=True, help="directory of the RGB images")
    io.add_argument("--panoptic-dir", type=Path, help="directory of the panoptic PNGs (default: JSON path minus .json)")
    io.add_argument("--captions", type=Path, help="COCO captions JSON (ground-truth captions; optional)")
    io.add_argument("--descriptions", type=Path, help="pseudo image / segment descriptions JSON (optional)")
    io.add_argument("--out", type=Path, required=True, help="FIND-Bench JSON to write")
    io.add_argument("--work-dir", type=Path, help="resumable work files (default: OUT.work)")
    io.add_argument("--stats", type=Path, help="statistics JSON (default: OUT-stem.stats.json)")
    io.add_argument("--rejects", type=Path, help="rejected answers JSONL (default: OUT-stem.rejects.jsonl)")
    io.add_argument("--limit", type=int, help="only the first N images")

    gen = p.add_argument_group("caption generation")
    gen.add_argument("--backend", choices=["offline", "chat"], default="offline")
    gen.add_argument("--captions-per-image", type=int, default=1)
    gen.add_argument("--max-entities", type=int, default=4, help="offline backend: entities per caption")
    gen.add_argument("--base-url", help="chat backend: OpenAI-compatible base URL, e.g. http://host:8000/v1")
    gen.add_argument("--model", help="chat backend: model name")
    gen.add_argument("--api-key-env", help="chat backend: NAME of the environment variable holding the API key")
    gen.add_argument("--concurrency", type=int, default=4, help="chat backend: requests in parallel")
    gen.add_argument("--timeout", type=float, default=60.0, help="chat backend: seconds per request")
    gen.add_argument("--max-attempts", type=int, default=5, help="chat backend: HTTP attempts per completion")
    gen.add_argument("--max-generations", type=int, default=3,
                     help="chat backend: answers per image before rejecting it")
    gen.add_argument("--backoff", type=float, default=1.0, help="chat backend: first retry delay in seconds")
    gen.add_argument("--temperature", type=float, default=0.2)
    gen.add_argument("--max-tokens", type=int, help="chat backend: answer token limit (default: 100 + 200 per caption)")
    gen.add_argument("--max-segments", type=int, default=30, help="chat backend: largest segments offered per prompt")

    ref = p.add_argument_group("visual references")
    ref.add_argument("--references", action="store_true", help="add interleave 'reference' fields")
    ref.add_argument("--embedder", choices=["auto", "find", "color"], default="auto",
                     help="segment embedder: 'find' (FIND region embeddings; what 'auto' picks when --find-model "
                     "is given or a trained default model exists) or 'color' (colour/shape from pixels, no model)")
    ref.add_argument("--find-model", type=Path, help="FindModel directory (default: the model package's default)")
    ref.add_argument("--device", default="cpu", help="device for the FIND embedder")
    ref.add_argument("--same-category", action="store_true", help="references only from the same category")
    ref.add_argument("--index", choices=["exact", "faiss", "auto"], default="auto")

    p.add_argument("--dry-run", action="store_true",
                   help="report the work (LLM calls) without doing or writing anything")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _backend(args: argparse.Namespace, parser: argparse.ArgumentParser):  # noqa: ANN202 - CaptionBackend
    if args.backend == "offline":
        from .offline import OfflineBackend

        return OfflineBackend(max_entities=args.max_entities)
    if not args.base_url or not args.model:
        parser.error("--backend chat needs --base-url and --model")
    from .chat import ChatBackend
    from .chat_client import ChatClient, RetryPolicy

    client = ChatClient(
        args.base_url,
        args.model,
        api_key_env=args.api_key_env,
        timeout=args.timeout,
        policy=RetryPolicy(max_attempts=args.max_attempts, base_delay=args.backoff),
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        require_key=not args.dry_run,
    )
    return ChatBackend(client, max_generations=args.max_generations, max_segments=args.max_segments)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from .engine import EngineConfig, IncompleteRun, plan, run

    try:
        cfg = EngineConfig(
            panoptic_json=args.coco_panoptic,
            images_dir=args.images,
            out=args.out,
            panoptic_dir=args.panoptic_dir,
            captions_json=args.captions,
            descriptions_json=args.descriptions,
            work_dir=args.work_dir,
            stats_path=args.stats,
            rejects_path=args.rejects,
            captions_per_image=args.captions_per_image,
            references=args.references,
            same_category=args.same_category,
            index=args.index,
            limit=args.limit,
            concurrency=args.concurrency,
            progress=not args.no_progress,
        )
        backend = _backend(args, parser)
        embedder = None
        if args.references:
            from .embedders import make_embedder

            embedder = make_embedder(args.embedder, args.find_model, args.device)
            logging.getLogger(__name__).info("segment embedder: %s", embedder.name)
        if args.dry_run:
            report = plan(cfg, backend, embedder)
            print(json.dumps(report, indent=2))
            return 0
        summary = run(cfg, backend, embedder)
    except IncompleteRun as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except DataEngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .stats import print_table

    print_table(summary.stats)
    print(json.dumps({"out": str(summary.out), "stats": str(summary.stats_file), "rejects": str(summary.rejects_file)}))
    return 0
