"""The package is installable and described correctly for ROS 2 tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]


def test_package_xml_is_valid_format3_and_names_runtime_dependencies() -> None:
    package = parse_package(str(REPO / "package.xml"))
    package.validate()
    assert package.package_format == 3
    assert package.name == "find_ros"
    assert package.get_build_type() == "ament_python"
    runtime = {d.name for d in package.exec_depends}
    for needed in ("rclpy", "sensor_msgs", "std_msgs", "find_ros_msgs", "lifecycle_msgs", "python3-numpy", "python3-torch"):
        assert needed in runtime, f"package.xml lacks exec_depend {needed}"


def _rosdep_keys(package) -> set[str]:
    groups = (package.buildtool_depends, package.build_depends, package.build_export_depends,
              package.exec_depends, package.test_depends, package.doc_depends)
    return {d.name for group in groups for d in group}


def test_every_package_xml_dependency_is_a_key_rosdep_resolves_or_a_package_of_this_repository() -> None:
    """tests/data/rosdep_keys.txt holds the keys scripts/check_rosdep.sh saw rosdep resolve (offline,
    against a ros/rosdistro copy); a key added since then must pass that script first."""
    packages = [parse_package(str(REPO / "package.xml")), parse_package(str(REPO / "cmake" / "find_ros_msgs" / "package.xml"))]
    ours = {p.name for p in packages}
    resolved = {line.strip() for line in (REPO / "tests" / "data" / "rosdep_keys.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for package in packages:
        unresolved = _rosdep_keys(package) - ours - resolved
        assert not unresolved, f"{package.name}: keys not checked with rosdep: {sorted(unresolved)}"
    # The build type is not a dependency: rosdep has no key "ament_python".
    assert "ament_python" not in _rosdep_keys(packages[0]) and packages[0].get_build_type() == "ament_python"


def test_requirements_keep_ros_packages_apart_from_python_dependencies() -> None:
    """A ROS install gets rclpy and the message packages from its distro, never from requirements.txt."""
    def names(path: str) -> list[str]:
        return [line.split("#")[0].strip() for line in (REPO / path).read_text().splitlines() if line.split("#")[0].strip()]

    assert not [n for n in names("requirements.txt") if n.startswith("ros-") or n == "catkin-pkg"]
    assert "ros-kilted-rclpy" in names("requirements-ros.txt")
    assert all(n.startswith("ros-kilted-") or n == "catkin-pkg" for n in names("requirements-ros.txt"))


def test_msgs_package_xml_is_an_interface_package() -> None:
    package = parse_package(str(REPO / "cmake" / "find_ros_msgs" / "package.xml"))
    package.validate()
    assert package.name == "find_ros_msgs"
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in {g.name for g in package.member_of_groups}


def test_setup_py_installs_ament_marker_and_share_files() -> None:
    out = subprocess.run(
        [sys.executable, "setup.py", "--name", "--version"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["find_ros", "0.1.0"]
    assert (REPO / "resource" / "find_ros").is_file()


def test_package_and_messages_import_in_the_venv() -> None:
    code = "import find_ros, find_ros_msgs.msg, find_ros_msgs.srv; print(find_ros_msgs.msg.Instruction.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Instruction"


@pytest.mark.parametrize("name", ["Instruction", "VisualEntity", "EntityResult", "Grounding", "Localization", "FrameMatch", "Timing"])
def test_every_message_builds(name: str) -> None:
    import find_ros_msgs.msg as msgs

    msg = getattr(msgs, name)()
    assert msg.get_fields_and_field_types()


def test_find_ros_doctor_reports_ros_and_msgs() -> None:
    import json

    out = subprocess.run([sys.executable, "-m", "find_ros.cli", "doctor", "--json"], capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert report["rclpy"] and report["find_ros_msgs"]
    assert report["torch"].startswith("2.13.0")
