"""`find-ros import-find CKPT --out DIR`: convert a released FIND checkpoint
(``find_focalt_llama_x640.pt`` / ``find_focall_llama_x640.pt``) into a find_ros model directory,
which ``--model DIR`` then takes like any other model (see :mod:`find_ros.model.convert`)."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from find_ros.model.convert import import_find

    if args.out is None and not args.dry_run:
        raise ValueError("--out DIR is required (or --dry-run to only report the mapping)")
    report = import_find(args.checkpoint, args.out, config_path=args.config, language=args.language,
                         dry_run=args.dry_run)
    if args.dry_run or args.json:
        print(json.dumps(report, indent=None if args.json else 1))
        return 0
    source = report["source"]
    print(f"{report['variant']}: {report['tensors']} tensors from {source['file']} (sha256 {source['sha256'][:16]}...), "
          f"{report['ignored_language_keys']} language-model keys ignored")
    print("  mapped: " + ", ".join(f"{n} {kind}" for kind, n in report["kinds"].items() if n))
    print(f"  language model: {report['language_model']}"
          + ("" if report["language_checked"] else " (not found offline: its width is checked when the model loads)"))
    print(f"  wrote {report['out']} (config.json, model.safetensors, vision/)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import-find", help="convert a released FIND checkpoint into a find_ros model directory")
    parser.add_argument("checkpoint", help="the authors' .pt file (read once with torch.load(weights_only=True))")
    parser.add_argument("--out", help="model directory to write (config.json, model.safetensors, vision/)")
    parser.add_argument("--config", help="the authors' YAML (their layout, e.g. focalt_llama_lang.yaml); "
                                         "unset values take the released models' defaults")
    parser.add_argument("--language", help="language model name or directory (default: the YAML's MODEL.TEXT.NAME, "
                                           "else huggyllama/llama-7b)")
    parser.add_argument("--dry-run", action="store_true", help="check and report the full key mapping; write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(func=run)
