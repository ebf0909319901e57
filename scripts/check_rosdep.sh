#!/usr/bin/env bash
# Resolves every rosdep key of package.xml and cmake/find_ros_msgs/package.xml offline, with rosdep
# from PyPI ($VENV/ros-tools, scripts/setup_env.sh) against a local copy of ros/rosdistro, for each
# ROS distro on Ubuntu 24.04, as `rosdep install --from-paths` of the README would; then records the
# keys in tests/data/rosdep_keys.txt, which tests/test_package.py checks both package.xml files against.
#
#   scripts/check_rosdep.sh /path/to/rosdistro-checkout [distro ...]     (default: kilted jazzy)
#
# ROSDISTRO_COMMIT names the checkout's commit in the file when it is not a git work tree.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
ROSDISTRO=$(cd "${1:?usage: $0 ROSDISTRO_CHECKOUT [distro ...]}" && pwd)
shift
if [ $# -gt 0 ]; then DISTROS=("$@"); else DISTROS=(kilted jazzy); fi
OS=ubuntu:noble
COMMIT=${ROSDISTRO_COMMIT:-$(git -C "$ROSDISTRO" rev-parse HEAD 2>/dev/null || echo unknown)}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/sources.list.d"
for f in base python ruby; do echo "yaml file://$ROSDISTRO/rosdep/$f.yaml"; done >"$WORK/sources.list.d/20-default.list"
export ROSDEP_SOURCE_PATH=$WORK/sources.list.d ROSDISTRO_INDEX_URL=file://$ROSDISTRO/index-v4.yaml
export ROS_HOME=$WORK/home ROS_PYTHON_VERSION=3 PYTHONPATH=$VENV/ros-tools
rosdep() { "$VENV/bin/python" "$VENV/ros-tools/bin/rosdep" "$@"; }

cd "$ROOT"
PATHS=(. cmake/find_ros_msgs)
for distro in "${DISTROS[@]}"; do
  rosdep update --rosdistro "$distro" >/dev/null
  echo "== $distro on $OS"
  rosdep install --simulate --default-yes --from-paths "${PATHS[@]}" --ignore-src --rosdistro "$distro" --os="$OS"
done
{
  echo "# rosdep keys of package.xml and cmake/find_ros_msgs/package.xml, each resolved by"
  echo "# \`rosdep install --simulate --from-paths . cmake/find_ros_msgs --ignore-src --os=$OS\`"
  echo "# for ${DISTROS[*]} against ros/rosdistro $COMMIT (written by scripts/check_rosdep.sh)."
  rosdep keys --from-paths "${PATHS[@]}" --ignore-src | sort -u
} >tests/data/rosdep_keys.txt
echo "wrote tests/data/rosdep_keys.txt"
