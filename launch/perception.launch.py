"""The find_ros perception graph on a ROS 2 install: grounding and video localization nodes.

    ros2 launch find_ros perception.launch.py [params:=/path/to/perception.yaml] [autostart:=true]

Parameters come from one file, config/perception.yaml, the same file `find-ros perception --params`
reads. Both nodes are lifecycle nodes: with autostart they are configured, then activated once
inactive (the model loads on activate).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

NODES = (("grounding_node", "find_grounding"), ("localization_node", "find_localization"))


def _transition(node: LifecycleNode, transition_id: int, **kwargs) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id), **kwargs)


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("find_ros"), "config", "perception.yaml")
    params = LaunchConfiguration("params")
    autostart = IfCondition(LaunchConfiguration("autostart"))
    actions = [
        DeclareLaunchArgument("params", default_value=default_params, description="node parameter file"),
        DeclareLaunchArgument("autostart", default_value="true", description="configure and activate the nodes"),
    ]
    for executable, name in NODES:
        node = LifecycleNode(
            package="find_ros", executable=executable, name=name, namespace="", parameters=[params], output="screen"
        )
        actions.append(node)
        actions.append(_transition(node, Transition.TRANSITION_CONFIGURE, condition=autostart))
        actions.append(
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="configuring",
                    goal_state="inactive",
                    entities=[_transition(node, Transition.TRANSITION_ACTIVATE)],
                ),
                condition=autostart,
            )
        )
    return LaunchDescription(actions)
