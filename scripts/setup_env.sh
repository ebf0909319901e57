#!/usr/bin/env bash
# Sets up everything find_ros needs, from a fresh clone, and is fast when nothing changed.
#
#   1. Debian packages (open3d needs libusb; the msgs build needs cmake and a compiler; the tests
#      need unshare and ip for their private network namespace).
#   2. .venv with the CPU build of torch==2.13.0 installed FIRST, then the ROS 2 wheels
#      (requirements-ros.txt: this machine has no ROS install) and the Python dependencies
#      (requirements.txt) under constraints.txt so pip can never swap torch for a CUDA build or pull
#      numpy 2; colcon and rosdep (requirements-tools.txt) into a folder of their own.
#   3. A guard in torchvision so its CUDA-built wheel imports on CPU torch (nerfstudio imports it).
#   4. find_ros_msgs built from msg/ and srv/ with plain cmake into the venv prefix.
#   5. find_ros itself, editable.
#
# Each step leaves a stamp holding the hash of its inputs under .venv/.find_ros-stamps; a step whose
# inputs did not change is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
STAMPS=$VENV/.find_ros-stamps
TORCH_VERSION=2.13.0

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
up_to_date() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
mark_done() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }

# --- 1. Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(libusb-1.0-0 cmake g++ make iproute2 util-linux)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. virtual environment ---------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if ! up_to_date torch "$TORCH_VERSION"; then
  log "installing torch==$TORCH_VERSION (CPU build) first"
  "${PIP[@]}" install -q --upgrade pip setuptools wheel
  "${PIP[@]}" install -q "torch==$TORCH_VERSION"
  mark_done torch "$TORCH_VERSION"
fi

deps_hash=$(hash_of requirements-ros.txt requirements.txt constraints.txt)
if ! up_to_date deps "$deps_hash"; then
  log "installing requirements under constraints.txt (first run: several minutes)"
  "${PIP[@]}" install -q -c constraints.txt -r requirements-ros.txt -r requirements.txt
  mark_done deps "$deps_hash"
fi

# colcon needs setuptools<80 for its setup.py builds; a --target folder keeps that away from the
# venv's own setuptools. Run as: PYTHONPATH=$VENV/ros-tools $VENV/bin/python $VENV/ros-tools/bin/colcon
TOOLS=$VENV/ros-tools
tools_hash=$(hash_of requirements-tools.txt)
if ! up_to_date tools "$tools_hash" || [ ! -x "$TOOLS/bin/colcon" ]; then
  log "installing colcon and rosdep into $TOOLS"
  rm -rf "$TOOLS"
  "${PIP[@]}" install -q --target "$TOOLS" -r requirements-tools.txt
  mark_done tools "$tools_hash"
fi

# --- 3. torchvision on CPU torch ----------------------------------------------------------------
"$VENV/bin/python" "$ROOT/scripts/patch_torchvision.py"

# --- 4. find_ros_msgs ---------------------------------------------------------------------------
msgs_hash=$(hash_of msg/*.msg srv/*.srv cmake/find_ros_msgs/CMakeLists.txt cmake/find_ros_msgs/package.xml)
if ! up_to_date msgs "$msgs_hash" || ! "$VENV/bin/python" -c "import find_ros_msgs.msg" 2>/dev/null; then
  log "building find_ros_msgs into the venv"
  BUILD=$ROOT/build/find_ros_msgs
  rm -rf "$BUILD"; mkdir -p "$ROOT/build"
  PY_INC=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  export AMENT_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH
  cmake -S cmake/find_ros_msgs -B "$BUILD" -Wno-dev \
    -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_INCLUDE_DIR="$PY_INC" \
    -DBUILD_TESTING=OFF >"$ROOT/build/find_ros_msgs.cmake.log" 2>&1 \
    || { tail -40 "$ROOT/build/find_ros_msgs.cmake.log"; exit 1; }
  cmake --build "$BUILD" -j2 >>"$ROOT/build/find_ros_msgs.cmake.log" 2>&1 \
    || { tail -40 "$ROOT/build/find_ros_msgs.cmake.log"; exit 1; }
  cmake --install "$BUILD" >>"$ROOT/build/find_ros_msgs.cmake.log" 2>&1 \
    || { tail -40 "$ROOT/build/find_ros_msgs.cmake.log"; exit 1; }
  "$VENV/bin/python" -c "import find_ros_msgs.msg" \
    || { echo "find_ros_msgs was built but does not import; see build/find_ros_msgs.cmake.log"; exit 1; }
  mark_done msgs "$msgs_hash"
fi

# --- 5. find_ros, editable ----------------------------------------------------------------------
pkg_hash=$(hash_of setup.py setup.cfg package.xml)
if ! up_to_date package "$pkg_hash"; then
  log "installing find_ros (editable)"
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e .
  mark_done package "$pkg_hash"
fi
