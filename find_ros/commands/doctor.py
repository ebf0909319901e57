"""`find-ros doctor`: what is installed and what this machine can run."""

from __future__ import annotations

import argparse
import importlib
import json


def _version(module: str) -> str | None:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None


def collect() -> dict[str, object]:
    import torch

    report: dict[str, object] = {
        "find_ros": _version("find_ros"),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    for module in ("transformers", "safetensors", "numpy", "open3d", "nerfstudio", "pycocotools", "rosbags"):
        report[module] = _version(module)
    report["rclpy"] = _version("rclpy")
    report["find_ros_msgs"] = _version("find_ros_msgs.msg")
    return report


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:14s} {value if value is not None else 'MISSING'}")
    return 0 if report["rclpy"] and report["find_ros_msgs"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="show what is installed and usable")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(func=run)
