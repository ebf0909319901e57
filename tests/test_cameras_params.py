"""The cameras a node's parameters describe (find_ros.nodes.cameras), and the checks on them."""

from __future__ import annotations

import pytest

from find_ros.nodes.cameras import cameras_of
from find_ros.nodes.params import GroundingParams


def test_no_cameras_is_the_single_camera_of_todays_topics() -> None:
    (camera,) = cameras_of(GroundingParams())
    assert (camera.name, camera.image_topic, camera.depth_topic, camera.info_topic) == (
        "", "/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info")
    assert camera.output_topic("/find_ros/grounding") == "/find_ros/grounding"


def test_each_namespace_gets_its_topics_and_its_own_outputs() -> None:
    front, rear = cameras_of(GroundingParams(cameras=["/front", "/robot/rear/"], cameras_depth_topic=""))
    assert (front.image_topic, front.info_topic, front.depth_topic) == ("/front/color/image_raw", "/front/color/camera_info", "")
    assert rear.name == "/robot/rear" and rear.image_topic == "/robot/rear/color/image_raw"
    assert rear.output_topic("/find_ros/grounding") == "/robot/rear/find_ros/grounding"


@pytest.mark.parametrize(("cameras", "message"), [(["front"], "absolute namespace"), (["/"], "absolute namespace"),
                                                   (["/a", "/a"], "listed twice")])
def test_bad_camera_lists_are_refused_by_name(cameras, message) -> None:
    with pytest.raises(ValueError, match=f"cameras: .*{message}"):
        GroundingParams(cameras=cameras)


def test_bad_depth_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="depth_sync_tolerance_s"):
        GroundingParams(depth_sync_tolerance_s=-1.0)
