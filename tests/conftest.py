"""System-test fixtures: nodes as real processes over DDS, each test in its own ROS domain."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sftest import INSTALL, ROOT, node_exe  # noqa: F401  (re-exported for fixtures)

_domains = itertools.count()


@pytest.fixture
def domain_id() -> int:
    """A ROS domain no other test (or parallel run) of this session shares."""
    return 100 + (os.getpid() * 7 + next(_domains)) % 100


@pytest.fixture
def ros_env(domain_id, tmp_path):
    from storefuse_tools.paths import ros_env as make_env
    env = make_env(domain_id)
    env["ROS_LOG_DIR"] = str(tmp_path / "roslog")
    return env


class Processes:
    def __init__(self, env):
        self.env, self.procs = env, []

    def start(self, args, log: Path) -> subprocess.Popen:
        out = open(log, "w")
        proc = subprocess.Popen([str(a) for a in args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((proc, out))
        return proc

    def stop(self) -> list[int]:
        codes = []
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc, out in self.procs:
            try:
                codes.append(proc.wait(timeout=10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes.append(proc.wait())
            out.close()
        return codes


@pytest.fixture
def processes(ros_env):
    procs = Processes(ros_env)
    yield procs
    procs.stop()


class RosClient:
    """An rclpy node in the test process, on the test's domain, spun only while waiting."""

    def __init__(self, domain_id: int):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("storefuse_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


@pytest.fixture
def ros_client(domain_id, ros_env):
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", ros_env.get("FASTDDS_DEFAULT_PROFILES_FILE", ""))
    client = RosClient(domain_id)
    yield client
    client.close()
