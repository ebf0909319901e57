"""Test-suite isolation.

DDS must never leave this machine. Before anything imports rclpy:
* when root and `unshare` works, the whole pytest run re-executes itself inside a fresh network
  namespace with only loopback up, so no packet can reach another host whatever a test does;
* in every case discovery is limited to localhost and a private ROS_DOMAIN_ID is chosen for the run.
Both happen here, so `pytest` called directly is as safe as `make test`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_IN_NETNS = "FIND_ROS_TEST_NETNS"


def _reexec_in_private_netns(config) -> None:  # noqa: ANN001 - pytest Config
    if os.environ.get(_IN_NETNS) or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return
    os.environ[_IN_NETNS] = "1"
    # pytest already redirects fds 1 and 2 into its capture files; give them back to the terminal
    # before the new process inherits them.
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(
        "unshare",
        ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *sys.orig_argv],
    )


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest hook signature
    _reexec_in_private_netns(config)


# Set before any test module imports rclpy; child processes inherit the same private domain.
from find_ros.ros_env import isolate_dds  # noqa: E402

DOMAIN_ID = isolate_dds()
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded, in tests least of all

REPO = Path(__file__).resolve().parents[1]


def pytest_report_header(config) -> list[str]:  # noqa: ANN001 - pytest hook signature
    where = "private network namespace (loopback only)" if os.environ.get(_IN_NETNS) else "host network namespace"
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "none")
    return [f"find_ros: DDS domain {DOMAIN_ID}, discovery LOCALHOST, {where}, Fast DDS profile {profile}"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random FIND model (FocalNet + BERT families) saved through save_pretrained: UNTRAINED,
    for tests of plumbing (nodes, CLI), never of quality."""
    from find_ros.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
