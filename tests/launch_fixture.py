"""A launch file's nodes as a pytest fixture: an isolated ROS domain, readiness read from the ROS
graph (node names, publishers) rather than slept for, and a teardown that proves nothing is left.

Use it from a test module (not conftest.py: every package's test folder has its own conftest, so
importing from one is ambiguous):

    pytest_plugins = ["launch_fixture"]     # fixtures launch_domain, launch_stack

    def test_something(launch_stack):
        stack = launch_stack(ROOT / "launch/sim.launch.yaml", {"rate": "3.0"},
                             topics=["/store/receipts/final"])
        finals = stack.await_messages("/store/receipts/final", 2, timeout=120)

The domain is leased per pytest process (one per xdist worker) with a lock file, so parallel
sessions and workers never share one. Every process started carries a marker in its environment;
teardown stops the runner and then looks through /proc for any process still carrying it.
"""
from __future__ import annotations

import fcntl
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

# Above the domains tests/conftest.py hands out (100..199 by pid hash) and the helpers' own; ports
# stay below 65535 up to domain 232 (7400 + 250 x domain + participant offsets).
DOMAIN_RANGE = range(200, 231)
LOCK_DIR = Path(os.environ.get("STOREFUSE_DOMAIN_LOCKS", "/tmp/storefuse-domain-locks"))
MARKER = "STOREFUSE_LAUNCH_FIXTURE"


class DomainLease:
    """A ROS_DOMAIN_ID no other holder of a lease uses while this one is held (flock, released on exit)."""

    def __init__(self, candidates=DOMAIN_RANGE):
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        start = os.getpid() % len(candidates)
        for k in range(len(candidates)):
            domain = candidates[(start + k) % len(candidates)]
            handle = open(LOCK_DIR / f"{domain}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.domain_id, self._handle = domain, handle
            return
        raise RuntimeError(f"no free ROS domain in {candidates.start}..{candidates.stop - 1}")

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class GraphClient:
    """An rclpy node of the test process on the stack's domain, spun only while waiting."""

    def __init__(self, domain_id: int):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("launch_fixture_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def wait_for(self, predicate, timeout: float, what: str, check=None) -> None:
        """Spin until predicate() holds; `check()` runs between spins and may raise (a node died)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if check is not None:
                check()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def node_names(self) -> set[str]:
        return {ns.rstrip("/") + "/" + name for name, ns in self.node.get_node_names_and_namespaces()}

    def publishers(self, topic: str) -> int:
        return self.node.count_publishers(topic)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


class Collector:
    """Messages of one topic as they arrive (subscribed with what its publishers offer)."""

    def __init__(self, stack: LaunchedStack, topic: str, msg_type=None):
        from rclpy.qos import HistoryPolicy, QoSProfile
        self.stack, self.topic, self.messages = stack, topic, []
        node = stack.client.node
        infos = node.get_publishers_info_by_topic(topic)
        if msg_type is None:
            from storefuse_nodes.msgtypes import message_class
            types = {i.topic_type for i in infos}
            if len(types) != 1:
                raise AssertionError(f"{topic}: cannot tell its type from the graph "
                                     f"({sorted(types) or 'no publisher'})")
            msg_type = message_class(types.pop())
        qos = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST)
        if infos:
            qos.reliability = infos[0].qos_profile.reliability
            qos.durability = infos[0].qos_profile.durability
        self.sub = node.create_subscription(msg_type, topic, self.messages.append, qos)

    def wait(self, n: int, timeout: float = 60.0) -> list:
        self.stack.client.wait_for(lambda: len(self.messages) >= n, timeout,
                                   f"{n} message(s) on {self.topic} (have {len(self.messages)})", self.stack.check)
        return self.messages[:n]


class LaunchedStack:
    """The handle a test gets: who runs, what they publish, and ways to wait for messages."""

    def __init__(self, runner, specs, client: GraphClient, env: dict, lines: list[str]):
        self.runner, self.specs, self.client, self.env, self.lines = runner, specs, client, env, lines
        self.nodes = sorted(_full_name(s) for s in specs)
        self.topics: list[str] = []
        self.exit_codes: dict | None = None

    def check(self) -> None:
        """Fail at once, with its last output, if a node exited by itself."""
        failed = self.runner.failed
        if failed is None and len(self.runner.alive()) < len(self.specs):
            failed = next(s for s in self._labels() if s not in self.runner.alive())
        if failed is not None:
            tail = "\n".join(line for line in self.lines[-400:] if line.startswith(f"[{failed}]"))[-3000:]
            raise AssertionError(f"node {failed!r} exited while the stack was expected to run:\n{tail}")

    def _labels(self) -> list[str]:
        return [s.name or s.exec for s in self.specs]

    def subscribe(self, topic: str, msg_type=None) -> Collector:
        """Start collecting now (a message published before this is gone unless durable)."""
        return Collector(self, topic, msg_type)

    def await_messages(self, topic: str, n: int = 1, timeout: float = 60.0, msg_type=None) -> list:
        return self.subscribe(topic, msg_type).wait(n, timeout)

    def stop(self) -> dict:
        if self.exit_codes is None:
            self.exit_codes = self.runner.stop()
        return self.exit_codes


def _full_name(spec) -> str:
    return (spec.namespace.rstrip("/") or "") + "/" + (spec.name or spec.exec)


def leftover_processes(marker: str) -> list[int]:
    """Processes (of this user) whose environment carries the stack's marker."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextmanager
def launched(launch_file: str | Path, args: dict[str, str] | None, domain_id: int, log_dir: Path,
             topics: list[str] = (), nodes: list[str] | None = None, timeout: float = 60.0,
             marker: str | None = None):
    """Start a launch file's nodes; ready when every node is in the graph and every topic in
    `topics` has a publisher. On exit: stop all, then assert no process is left."""
    import signal

    from storefuse_tools.launch_runner import LaunchRunner, load_launch
    from storefuse_tools.paths import ros_env
    specs = load_launch(launch_file, {k: str(v) for k, v in (args or {}).items()})
    marker = marker or uuid.uuid4().hex
    env = ros_env(domain_id)
    env.update({"ROS_LOG_DIR": str(log_dir), MARKER: marker})
    lines: list[str] = []
    runner = LaunchRunner(sink=lines.append)
    client = GraphClient(domain_id)
    stack = LaunchedStack(runner, specs, client, env, lines)
    failing = False
    try:
        runner.start(specs, env=env)
        expected = set(nodes if nodes is not None else stack.nodes)
        client.wait_for(lambda: expected <= client.node_names(), timeout,
                        f"nodes {sorted(expected - client.node_names())} to join the graph", stack.check)
        for topic in topics:
            client.wait_for(lambda t=topic: client.publishers(t) > 0, timeout, f"a publisher on {topic}", stack.check)
        stack.topics = sorted(name for name, _ in client.node.get_topic_names_and_types())
        yield stack
    except BaseException:
        failing = True
        raise
    finally:
        stack.stop()
        client.close()
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "launch.log").write_text("\n".join(lines) + "\n")
        left = leftover_processes(marker)
        for pid in left:                  # never leave them to the next test, whatever happened
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left and not failing:
            raise AssertionError(f"processes left after the stack was stopped: {left}")


@pytest.fixture(scope="session")
def launch_domain():
    """This pytest process's ROS domain for launched stacks."""
    lease = DomainLease()
    yield lease.domain_id
    lease.release()


@pytest.fixture
def launch_stack(launch_domain, tmp_path):
    """start(launch_file, args, topics=..., nodes=..., timeout=...) -> LaunchedStack, torn down after the test."""
    from contextlib import ExitStack
    started = []
    with ExitStack() as stacks:
        def start(launch_file, args=None, topics=(), nodes=None, timeout=60.0) -> LaunchedStack:
            log_dir = tmp_path / f"launch-{len(started)}"
            started.append(stacks.enter_context(launched(launch_file, args, launch_domain, log_dir, list(topics),
                                                         nodes, timeout)))
            return started[-1]
        yield start
