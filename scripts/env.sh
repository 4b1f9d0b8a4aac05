# Source me: puts storefuse on PATH and keeps DDS on this host (bash).
_sf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$_sf_root/.venv/bin/activate"
# colcon's setup scripts read unset variables
set +u
# shellcheck disable=SC1091
. "$_sf_root/ros2_ws/install/setup.bash"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_sf_root/config/fastdds.xml}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$_sf_root/ros2_ws/log/ros}"
export RCUTILS_COLORIZED_OUTPUT="${RCUTILS_COLORIZED_OUTPUT:-0}"
unset _sf_root
