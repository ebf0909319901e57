"""Keep DDS traffic on this machine, and carry camera frames whole.

DDS discovery multicasts on every interface unless told otherwise. Everything in this repository that
starts DDS (tests, the demo, benchmarks) calls :func:`isolate_dds` before ``rclpy.init`` so that
discovery stays on loopback and uses a domain id no other session shares, and Fast DDS uses the
shipped frames profile (``config/fastdds_frames.xml``: a shared-memory segment that holds a whole
frame, where the built-in one drops most best-effort 640x480 frames). User-facing tools use the
user's ROS environment as it is; the README says how a robot opts into the same profile.
"""

from __future__ import annotations

import os
from pathlib import Path

FASTDDS_FRAMES_PROFILE = "fastdds_frames.xml"

# Domain ids 1..101 are valid for every RMW on Linux without port clashes; 0 is everyone's default.
_FIRST_PRIVATE_DOMAIN = 1
_LAST_PRIVATE_DOMAIN = 101


def private_domain_id(seed: int | None = None) -> int:
    """A domain id other than the default 0, derived from ``seed`` (the process id by default)."""
    seed = os.getpid() if seed is None else seed
    span = _LAST_PRIVATE_DOMAIN - _FIRST_PRIVATE_DOMAIN + 1
    return _FIRST_PRIVATE_DOMAIN + seed % span


def isolate_dds(domain_id: int | None = None) -> int:
    """Restrict DDS discovery to localhost on a private domain; returns the domain id in use.

    An explicit ``domain_id`` wins; otherwise an id already chosen for this process tree (inherited
    through the environment) is kept, so child processes join their parent's private domain.
    """
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if os.environ["RMW_IMPLEMENTATION"].startswith("rmw_fastrtps"):  # a profile set already is kept
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(package_config_file(FASTDDS_FRAMES_PROFILE)))
    if domain_id is None:
        inherited = os.environ.get("FIND_ROS_PRIVATE_DOMAIN")
        domain_id = int(inherited) if inherited else private_domain_id()
    if not 0 <= domain_id <= 232:
        raise ValueError(f"ROS_DOMAIN_ID must be in 0..232, got {domain_id}")
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["FIND_ROS_PRIVATE_DOMAIN"] = str(domain_id)
    return domain_id


def package_config_file(name: str) -> Path:
    """``config/<name>`` of the source tree, or of the installed share directory (colcon)."""
    source = Path(__file__).resolve().parents[1] / "config" / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("find_ros")) / "config" / name
    except Exception:  # noqa: BLE001 - not on a ROS install; fall through to the error below
        installed = None
    if installed is None or not installed.is_file():
        raise FileNotFoundError(f"config/{name} not found in the source tree or the installed find_ros share")
    return installed
