"""The private DDS of tests, demo and benchmarks: loopback discovery, a private domain, and Fast DDS
participants whose shared memory holds a whole camera frame (config/fastdds_frames.xml)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from find_ros.image_header import DEFAULT_MAX_PIXELS
from find_ros.ros_env import isolate_dds

NS = {"dds": "http://www.eprosima.com"}


def test_isolate_dds_uses_the_frames_profile_unless_one_is_set(monkeypatch) -> None:
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    assert isolate_dds(42) == 42 and os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    profile = Path(os.environ["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert profile.name == "fastdds_frames.xml" and profile.is_file()

    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/somewhere/the_users.xml")
    isolate_dds(42)
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == "/somewhere/the_users.xml"  # never replaced

    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE")
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
    isolate_dds(42)
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ  # a Fast DDS file means nothing to another RMW


def test_the_frames_profile_holds_the_largest_frame_the_nodes_accept() -> None:
    """The shared-memory segment and message size fit a raw rgb8 frame at max_image_pixels, and the
    participant profile is the default one, so every participant of the process uses it."""
    isolate_dds()
    root = ET.parse(os.environ["FASTDDS_DEFAULT_PROFILES_FILE"]).getroot()
    shm = next(d for d in root.iterfind(".//dds:transport_descriptor", NS) if d.findtext("dds:type", "", NS) == "SHM")
    frame_bytes = DEFAULT_MAX_PIXELS * 3
    assert int(shm.findtext("dds:maxMessageSize", "0", NS)) >= frame_bytes
    assert int(shm.findtext("dds:segment_size", "0", NS)) >= 2 * frame_bytes
    participant = root.find(".//dds:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind(".//dds:userTransports/dds:transport_id", NS)]
    assert shm.findtext("dds:transport_id", "", NS) in used and participant.findtext(".//dds:useBuiltinTransports", "", NS) == "false"
