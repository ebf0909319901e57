"""The find_ros perception graph on a ROS 2 install: grounding and video localization nodes.

    ros2 launch find_ros perception.launch.py [params:=/path/to/perception.yaml] [autostart:=true|false]

Parameters come from one file, config/perception.yaml, the same file `find-ros perception --params`
reads. Both nodes are lifecycle nodes. ``autostart`` is the one switch: it sets each node's
``autostart`` parameter (over the file's), and a node with it true configures and activates itself
(the model loads on activate). With ``autostart:=false`` both wait unconfigured for
``ros2 lifecycle set /find_grounding configure`` (then ``activate``). Each node's latched
``~/ready`` (std_msgs/Bool) turns true once its model is loaded.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue

NODES = (("grounding_node", "find_grounding"), ("localization_node", "find_localization"))


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("find_ros"), "config", "perception.yaml")
    params = LaunchConfiguration("params")
    autostart = {"autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)}
    actions = [
        DeclareLaunchArgument("params", default_value=default_params, description="node parameter file"),
        DeclareLaunchArgument("autostart", default_value="true", description="configure and activate the nodes on start"),
    ]
    for executable, name in NODES:
        actions.append(
            LifecycleNode(
                package="find_ros", executable=executable, name=name, namespace="",
                parameters=[params, autostart], output="screen",
            )
        )
    return LaunchDescription(actions)
