#!/usr/bin/env bash
# One-time (idempotent) set-up of a storefuse checkout: system packages, .venv with the pinned
# ROS 2 wheels, the CMake path fix the wheels need, and the colcon overlay in ros2_ws/install.
# Every step is skipped when its inputs have not changed, so a second run takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${STOREFUSE_PYTHON:-python3}"
STAMPS="$ROOT/.venv/.storefuse-stamps"
say() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# 1. System packages (cmake and a C compiler build the interface packages).
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
"$PY" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi

# 2. The virtual environment with pinned wheels.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
req_hash="$(hash_of requirements.txt)"
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  say "installing pinned Python packages (ROS 2 Kilted wheels, numpy, rosbags, ...)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'pip>=23' 'setuptools==79.0.1' wheel 2>&1 \
    | { grep -v "^WARNING: Location .* is ignored" || true; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
    | { grep -v "^WARNING: Location .* is ignored" || true; }
  echo "$req_hash" > "$STAMPS/requirements"
  rm -f "$STAMPS/cmakefix"
fi

# 3. The wheels' CMake exports name the wheel build host's Python paths; point them at ours.
if [ ! -f "$STAMPS/cmakefix" ]; then
  say "rewriting build-host paths in the ROS wheels' CMake files"
  "$VENV/bin/python" "$ROOT/scripts/fix_cmake_paths.py" "$VENV"
  touch "$STAMPS/cmakefix"
fi

# 4. colcon overlay: interfaces, compat tf2_msgs (only where the real one is absent), the
#    Python packages (symlinked, so edits need no rebuild) and the root bringup package.
src_hash="$(find packages package.xml CMakeLists.txt launch config urdf_store scenarios -type f \
  \( -name package.xml -o -name CMakeLists.txt -o -name '*.msg' -o -name '*.srv' -o -name setup.py \
     -o -name setup.cfg -o -name '*.launch.yaml' -o -name '*.yaml' -o -name '*.rviz' -o -name '*.urdf' \) \
  2>/dev/null | sort | xargs cat | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMPS/colcon" 2>/dev/null)" != "$src_hash" ] || [ ! -f ros2_ws/install/setup.bash ]; then
  say "building the colcon workspace in ros2_ws/"
  skip=()
  if "$VENV/bin/python" -c 'import sys; sys.path=[p for p in sys.path if "ros2_ws" not in p]; import tf2_msgs.msg' 2>/dev/null; then
    skip=(--packages-skip tf2_msgs)
  fi
  (
    cd ros2_ws
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    colcon --log-base log build --base-paths ../packages .. --build-base build --install-base install \
      --symlink-install --event-handlers console_direct- console_cohesion- status- summary+ \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" "${skip[@]}" >/dev/null \
      2> >(grep -v "doesn't contain any 'local_setup" >&2) \
      || { echo "[setup] colcon build failed; see ros2_ws/log/latest_build" >&2; exit 1; }
  )
  echo "$src_hash" > "$STAMPS/colcon"
fi
say "ready: . scripts/env.sh puts storefuse on PATH"
