"""The `find-ros` command. Each subcommand lives in a module of find_ros.commands that exposes
``register(subparsers)``; heavy imports happen inside the command functions, so `find-ros --help`
stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "find_ros.commands.model",
    "find_ros.commands.album",
    "find_ros.commands.scenes",
    "find_ros.commands.perception",
    "find_ros.commands.topics",
    "find_ros.commands.demo",
    "find_ros.commands.doctor",
    "find_ros.commands.field",
    "find_ros.commands.import_find",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="find-ros",
        description="FIND for ROS 2: grounding, localization and retrieval from interleaved instructions.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as error:
        # User errors (bad file, bad instruction, bad option) end with one clear line, not a traceback.
        print(f"find-ros {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
