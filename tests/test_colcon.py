"""The README's colcon recipe, as written: a workspace with this repository in src/, colcon run by the
interpreter that has the dependencies, both packages built, then the executables run from install/.

colcon and its setuptools<80 come from requirements-tools.txt ($VENV/ros-tools, scripts/setup_env.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(sys.prefix) / "ros-tools"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _in_workspace(workspace: Path, command: str, timeout_s: float, **popen: object) -> subprocess.CompletedProcess:
    """``command`` in bash after `source install/setup.bash`, as a user's terminal runs it."""
    return subprocess.run(["bash", "-c", f"source install/setup.bash && {command}"], cwd=workspace,
                          capture_output=True, text=True, timeout=timeout_s, **popen)


def test_colcon_build_installs_ros_executables_and_the_find_ros_command(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert (TOOLS / "bin" / "colcon").is_file(), f"colcon is not in {TOOLS}; run `make setup`"
    workspace = tmp_path / "find_ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "find_ros").symlink_to(REPO)  # as `git clone <this repository> find_ros`

    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    # What `source /opt/ros/<distro>/setup.bash` provides on a ROS install: here the venv holds ROS.
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(TOOLS), env.get("PYTHONPATH", "")) if p),
               AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PATH=f"{venv_bin}:{env.get('PATH', '')}")
    build = subprocess.run(
        [sys.executable, str(TOOLS / "bin" / "colcon"), "build",
         "--base-paths", "src/find_ros", "src/find_ros/cmake/find_ros_msgs", "--event-handlers", "console_cohesion+"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=800,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    assert "Summary: 2 packages finished" in build.stdout, build.stdout[-3000:]
    assert "as data is deprecated" not in build.stdout + build.stderr

    prefix = workspace / "install" / "find_ros"
    assert (prefix / "lib" / "find_ros" / "grounding_node").is_file()   # where `ros2 run` looks
    assert (prefix / "lib" / "find_ros" / "localization_node").is_file()
    assert (prefix / "bin" / "find-ros").is_file() and not (prefix / "lib" / "find_ros" / "find-ros").exists()
    assert (prefix / "share" / "find_ros" / "launch" / "perception.launch.py").is_file()
    assert (prefix / "share" / "find_ros" / "config" / "perception.yaml").is_file()
    assert (prefix / "share" / "find_ros" / "config" / "fastdds_frames.xml").is_file()  # README: large frames
    model = next(prefix.glob("lib/python3*/site-packages/find_ros/default_model"))
    assert {p.name for p in model.iterdir()} >= {"config.json", "model.safetensors", "vision"}

    # The user's shell after `source install/setup.bash`: find-ros is on PATH and runs the installed copy.
    user_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    which = _in_workspace(workspace, "command -v find-ros && python -c 'import find_ros; print(find_ros.__file__)'",
                          60, env={**user_env, "PATH": f"{venv_bin}:{user_env.get('PATH', '')}"})
    assert which.returncode == 0, which.stderr
    assert which.stdout.splitlines() == [str(prefix / "bin" / "find-ros"),
                                         str(model.parent / "__init__.py")]

    # A node executable from install/ (as `ros2 run find_ros grounding_node` starts it) waits
    # unconfigured and says so on its latched ~/ready; find-ros from install/ reads it.
    node = subprocess.Popen(
        ["bash", "-c", f"source install/setup.bash && exec {prefix}/lib/find_ros/grounding_node "
                       f"--ros-args -p model:={tiny_model_dir}"],
        cwd=workspace, env=user_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        echo = _in_workspace(workspace, "find-ros echo /find_grounding/ready --type std_msgs/msg/Bool --timeout 120",
                             180, env=user_env)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert "data: False" in echo.stdout
        assert node.poll() is None
    finally:
        node.terminate()
        output = node.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
