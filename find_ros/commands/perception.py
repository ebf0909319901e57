"""`find-ros perception`: the perception graph in one process, from the launch file's parameter file.

Where `ros2 launch` is not installed (PyPI-only set-ups), this composes the same lifecycle nodes in
one process, reads the same config/perception.yaml, and configures and activates them: a
convenience that differs from the node executables on purpose (those wait unconfigured unless their
``autostart`` parameter is true). ``--no-autostart`` leaves them unconfigured, whatever the file says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NODES = {"grounding": "find_ros.nodes.grounding_node:GroundingNode", "localization": "find_ros.nodes.localization_node:LocalizationNode"}


def default_params_file() -> Path:
    """config/perception.yaml of the source tree, or of the installed share directory."""
    from find_ros.ros_env import package_config_file

    try:
        return package_config_file("perception.yaml")
    except FileNotFoundError:
        raise FileNotFoundError("config/perception.yaml not found; pass --params") from None


def run(args: argparse.Namespace) -> int:
    import importlib

    from find_ros.nodes.runner import spin_nodes

    params = Path(args.params) if args.params else default_params_file()
    if not params.is_file():
        raise FileNotFoundError(f"parameter file not found: {params}")
    factories = []
    for name in args.nodes.split(","):
        if name not in NODES:
            raise ValueError(f"unknown node {name!r}; choose from {', '.join(NODES)}")
        module, cls = NODES[name].split(":")
        factories.append(getattr(importlib.import_module(module), cls))
    if args.localhost_only:
        from find_ros.ros_env import isolate_dds

        isolate_dds()
    spin_nodes(factories, autostart=not args.no_autostart, params_file=str(params))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("perception", help="run the perception graph (grounding + localization) in one process")
    p.add_argument("--params", help="parameter file (default: config/perception.yaml)")
    p.add_argument("--nodes", default="grounding,localization", help="comma-separated: grounding, localization")
    p.add_argument("--no-autostart", action="store_true", help="leave the lifecycle nodes unconfigured (the file's autostart is not read)")
    p.add_argument("--localhost-only", action="store_true", help="keep DDS on this machine, private domain (demos, tests)")
    p.set_defaults(func=run)
