"""`find-ros instruct`, `echo` and `play`: send an instruction, print one message of a topic, play a bag.

They stand in for `ros2 topic pub/echo` and `ros2 bag play`, which are not installable from PyPI,
and use the same message conversions as the nodes. Like ros2cli they join the graph of the caller's
environment (ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE, RMW_IMPLEMENTATION); ``--localhost-only``
opts in to the private, loopback-only domain the tests and the demo use.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_INSTRUCTION_TOPIC = "/find_ros/instruction"


def _join_graph(args: argparse.Namespace) -> None:
    if args.localhost_only:
        from find_ros.ros_env import isolate_dds

        isolate_dds()


def run_instruct(args: argparse.Namespace) -> int:
    from find_ros.image_io import read_rgb
    from find_ros.nodes.instruction_msgs import build_instruction
    from find_ros.nodes.qos import INSTRUCTION_PUBLISHER
    from find_ros.nodes.topic_tools import publish_when_matched

    crops = [read_rgb(path) for path in args.crop]
    _join_graph(args)
    msg = build_instruction(
        args.text,
        crops,
        instruction_id=args.id,
        frame_id=args.frame_id,
        want_grounding=not args.no_grounding,
        want_localization=args.localize,
        top_k=args.top_k,
    )
    matched = publish_when_matched(
        args.topic, msg, INSTRUCTION_PUBLISHER, wait_for_subscribers=args.wait, timeout_s=args.timeout
    )
    print(f"published instruction {args.id!r} with {len(crops)} crop(s) to {args.topic} ({matched} subscribing node(s))")
    return 0


def run_echo(args: argparse.Namespace) -> int:
    from rclpy.serialization import serialize_message

    from find_ros.nodes.topic_tools import message_type, receive_one

    msg_type = message_type(args.type)
    _join_graph(args)
    msg = receive_one(args.topic, msg_type, timeout_s=args.timeout)
    if args.save:
        Path(args.save).write_bytes(serialize_message(msg))
    print(_summary(msg))
    return 0


def run_play(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from find_ros.nodes.bag_player import play_bag

    _join_graph(args)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if args.reliable else qos_profile_sensor_data
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("find_ros_bag_player", context=context)
        count = play_bag(
            node, args.bag, rate=args.rate, topics=args.topics or None, qos=qos, restamp=args.restamp,
            wait_for_subscribers=args.wait, wait_timeout_s=args.timeout,
            on_skip=lambda topic, msgtype, _: print(f"note: skipping {topic}: {msgtype} is not installed here", flush=True),
        )
        time.sleep(0.2)  # best effort has no acknowledgements: give the last samples time to leave
    finally:
        rclpy.shutdown(context=context)
    print(f"published {count} message(s) from {args.bag}")
    return 0


def _summary(msg: object, indent: str = "") -> str:
    """Fields one per line; byte arrays are shown by their length only."""
    lines = []
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, "get_fields_and_field_types"):
            lines.append(f"{indent}{name}:\n{_summary(value, indent + '  ')}")
        elif isinstance(value, (bytes, bytearray)) or (hasattr(value, "__len__") and name == "data"):
            lines.append(f"{indent}{name}: <{len(value)} bytes>")
        elif isinstance(value, list):
            lines.append(f"{indent}{name}: [{len(value)} item(s)]")
            for i, item in enumerate(value):
                inner = _summary(item, indent + "    ") if hasattr(item, "get_fields_and_field_types") else f"{indent}    {item!r}"
                lines.append(f"{indent}  - [{i}]\n{inner}")
        else:
            lines.append(f"{indent}{name}: {value!r}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("instruct", help="publish an interleaved instruction (text with <k> crops)")
    p.add_argument("text", help='instruction text, e.g. "the mug left of <0>"')
    p.add_argument("--crop", action="append", default=[], metavar="PATH", help="image for <0>, <1>, ... in order")
    p.add_argument("--id", default="cli", help="instruction id echoed by every result")
    p.add_argument("--topic", default=DEFAULT_INSTRUCTION_TOPIC)
    p.add_argument("--frame-id", default="")
    p.add_argument("--localize", action="store_true", help="also ask for video localization")
    p.add_argument("--no-grounding", action="store_true", help="do not ask for per-frame grounding")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--wait", type=int, default=1, metavar="N", help="publish once N nodes subscribe")
    p.add_argument("--timeout", type=float, default=30.0)
    _localhost_flag(p)
    p.set_defaults(func=run_instruct)

    e = subparsers.add_parser("echo", help="print one message of a topic")
    e.add_argument("topic")
    e.add_argument("--type", default="find_ros_msgs/msg/Instruction", help="pkg/msg/Type")
    e.add_argument("--save", metavar="FILE", help="also write the message, CDR-serialized, to FILE")
    e.add_argument("--timeout", type=float, default=30.0)
    _localhost_flag(e)
    e.set_defaults(func=run_echo)

    b = subparsers.add_parser("play", help="play a rosbag2 file onto its topics (like `ros2 bag play`)")
    b.add_argument("bag", help="rosbag2 directory (sqlite3 or mcap)")
    b.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    b.add_argument("--topics", nargs="*", help="only these topics")
    b.add_argument("--restamp", action="store_true", help="stamp headers with the current time, like a live camera")
    b.add_argument("--reliable", action="store_true", help="publish reliable (default: sensor-data best effort)")
    b.add_argument("--wait", type=int, default=0, metavar="N", help="start once every topic has N subscribers")
    b.add_argument("--timeout", type=float, default=30.0)
    _localhost_flag(b)
    b.set_defaults(func=run_play)


def _localhost_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--localhost-only", action="store_true",
                        help="keep DDS on this machine, in a private domain (tests, demos); default: your ROS environment")
