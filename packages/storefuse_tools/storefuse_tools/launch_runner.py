"""Start the nodes of a ROS 2 launch YAML file where the ROS launch packages are absent.

Only a subset of the launch_ros YAML frontend is understood, spelled exactly as launch_ros spells it,
so the same file also runs under real `ros2 launch` on store hardware. Anything outside the subset is
an error rather than silently ignored, so a file never means two different things.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml


class LaunchError(Exception):
    """A launch file that cannot be started; the message names the file and the entry."""


@dataclass
class NodeSpec:
    """One node to start, fully resolved (no substitutions left)."""

    pkg: str
    exec: str
    name: str = ''
    namespace: str = ''
    params: list = field(default_factory=list)  # ('name', value) tuples and param-file paths, in order
    remaps: list = field(default_factory=list)  # (from, to) pairs
    args: list[str] = field(default_factory=list)
    output: str = 'log'
    executable_path: str = ''
    env: dict[str, str] = field(default_factory=dict)
    ros_args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        """Command line in the order launch_ros builds it (name, namespace, params, remaps)."""
        cmd = [self.executable_path or self.exec, *self.args]
        if self.ros_args:
            cmd += ['--ros-args', *self.ros_args]
        cmd.append('--ros-args')
        if self.name:
            cmd += ['-r', f'__node:={self.name}']
        if self.namespace:
            cmd += ['-r', f'__ns:={self.namespace}']
        for param in self.params:
            if isinstance(param, tuple):
                cmd += ['-p', f'{param[0]}:={render_param(param[1])}']
            else:
                cmd += ['--params-file', str(param)]
        for src, dst in self.remaps:
            cmd += ['-r', f'{src}:={dst}']
        return cmd


def render_param(value: Any) -> str:
    """Render a value as ROS 2 command-line YAML, so that rcl reads back the same type."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return '.nan'
        return repr(value) if not math.isinf(value) else ('.inf' if value > 0 else '-.inf')
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(render_param(v) for v in value) + ']'
    text = str(value)
    return "'" + text.replace("'", "''") + "'" if _would_retype(text) else text


def _would_retype(text: str) -> bool:
    """True when rcl would not read `text` back as this exact string (number, bool, YAML syntax)."""
    if not text or text != text.strip() or any(c in text for c in ':#,[]{}\'"'):
        return True
    try:
        float(text)  # strtod in rcl also accepts forms YAML 1.1 does not (1e5, inf, nan)
        return True
    except ValueError:
        pass
    try:
        return yaml.safe_load(text) != text
    except yaml.YAMLError:
        return True


# --------------------------------------------------------------------------- parsing

_SUBST = re.compile(r'\$\(([^()]*)\)')
_KEYS = {
    'arg': {'name', 'default', 'description', 'choice'},
    'let': {'name', 'value'},
    'set_env': {'name', 'value'},
    'push-ros-namespace': {'namespace'},
    'push_ros_namespace': {'namespace'},
    'group': {'scoped', 'children'},
    'include': {'file', 'arg'},
    'node': {'pkg', 'exec', 'name', 'namespace', 'output', 'args', 'ros_args', 'param', 'remap', 'env',
             'exec_name'},
}
_MAX_INCLUDE_DEPTH = 20


@dataclass
class _Context:
    """Launch configurations, environment overlay and ROS namespace; copied for a scoped group."""

    vars: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    ns: str | None = None

    def copy(self) -> _Context:
        return _Context(dict(self.vars), dict(self.env), self.ns)


class _Loader:
    def __init__(self) -> None:
        self.specs: list[NodeSpec] = []
        self.path = Path()
        self.where = ''

    def error(self, message: str) -> LaunchError:
        return LaunchError(f'{self.path}: {self.where}: {message}')

    def text(self, value: Any, ctx: _Context) -> str:
        """A scalar attribute as a string, with substitutions done."""
        if isinstance(value, bool):
            return 'true' if value else 'false'
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise self.error(f'expected a string, got {type(value).__name__}: {value!r}')
        return _SUBST.sub(lambda m: self.substitute(m.group(1), ctx), value)

    def substitute(self, inner: str, ctx: _Context) -> str:
        try:
            kind, *rest = shlex.split(inner) or ['']
        except ValueError as exc:
            raise self.error(f'cannot parse substitution $({inner}): {exc}') from None
        if kind == 'var' and len(rest) == 1:
            if rest[0] not in ctx.vars:
                raise self.error(f"launch argument or variable '{rest[0]}' is not defined")
            return ctx.vars[rest[0]]
        if kind == 'env' and len(rest) in (1, 2):
            value = ctx.env.get(rest[0], os.environ.get(rest[0]))
            if value is None and len(rest) == 1:
                raise self.error(f"environment variable '{rest[0]}' is not set and has no default")
            return rest[1] if value is None else value
        if kind in ('find-pkg-share', 'find-pkg-prefix') and len(rest) == 1:
            prefix = self.package_prefix(rest[0])
            return str(prefix / 'share' / rest[0]) if kind == 'find-pkg-share' else str(prefix)
        if kind == 'dirname' and not rest:
            return str(self.path.parent)
        if kind == 'filename' and not rest:
            return self.path.name
        raise self.error(f'unsupported substitution $({inner}) (supported: var, env, find-pkg-share, '
                         'find-pkg-prefix, dirname, filename)')

    def package_prefix(self, pkg: str) -> Path:
        """The ament index lookup that ros2 run does: first prefix holding the package marker."""
        prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
        for prefix in prefixes:
            if (Path(prefix) / 'share/ament_index/resource_index/packages' / pkg).exists():
                return Path(prefix)
        raise self.error(f"package '{pkg}' not found in AMENT_PREFIX_PATH ({len(prefixes)} prefixes; "
                         'is the workspace built and install/setup.bash sourced?)')

    def flag(self, value: Any, key: str, ctx: _Context) -> bool:
        word = self.text(value, ctx).strip().lower()
        if word not in ('true', 'false', '1', '0'):
            raise self.error(f"'{key}' must be true/false/1/0, got {word!r}")
        return word in ('true', '1')

    def required(self, body: dict, key: str) -> Any:
        if key not in body:
            raise self.error(f"missing required key '{key}'")
        return body[key]

    def entities(self, value: Any, key: str) -> list[dict]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(f"'{key}' must be a list of mappings")
        return value

    def load_file(self, path: Path, ctx: _Context, depth: int) -> None:
        if depth > _MAX_INCLUDE_DEPTH:
            raise LaunchError(f'{path}: includes nested deeper than {_MAX_INCLUDE_DEPTH} (a cycle?)')
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise LaunchError(f'{path}: cannot read launch file: {exc}') from None
        except yaml.YAMLError as exc:
            raise LaunchError(f'{path}: invalid YAML: {exc}') from None
        if not isinstance(data, dict) or list(data) != ['launch']:
            raise LaunchError(f"{path}: the top level must be a single 'launch:' list")
        saved = self.path, self.where
        self.path = path.absolute()
        self.process(data['launch'] or [], ctx, 'launch', depth)
        self.path, self.where = saved

    def process(self, entries: Any, ctx: _Context, where: str, depth: int) -> None:
        self.where = where
        if not isinstance(entries, list):
            raise self.error('expected a list of actions')
        for i, item in enumerate(entries):
            self.where = f'{where}[{i}]'
            if not isinstance(item, dict) or len(item) != 1:
                raise self.error('each action must be a mapping with exactly one key, the action name')
            (kind, body), = item.items()
            self.where = f'{where}[{i}].{kind}'
            if kind not in _KEYS:
                raise self.error(f"unknown action '{kind}' (supported: {', '.join(sorted(_KEYS))})")
            if kind == 'group' and isinstance(body, list):
                body = {'children': body}
            if kind == 'include' and isinstance(body, str):
                body = {'file': body}
            if not isinstance(body, dict):
                raise self.error('expected a mapping of attributes')
            unknown = set(body) - _KEYS[kind] - {'if', 'unless'}
            if unknown:
                raise self.error(f'unsupported key(s) {sorted(unknown)} (supported: '
                                 f"{', '.join(sorted(_KEYS[kind] | {'if', 'unless'}))})")
            if 'if' in body and 'unless' in body:
                raise self.error("'if' and 'unless' are mutually exclusive")
            if 'if' in body and not self.flag(body['if'], 'if', ctx):
                continue
            if 'unless' in body and self.flag(body['unless'], 'unless', ctx):
                continue
            getattr(self, 'do_' + kind.replace('-', '_'))(body, ctx, depth)
            self.where = f'{where}[{i}].{kind}'

    def do_arg(self, body: dict, ctx: _Context, depth: int) -> None:
        name = str(self.required(body, 'name'))
        if name not in ctx.vars:
            if 'default' not in body:
                raise self.error(f"required launch argument '{name}' was not provided ({name}:=VALUE)")
            ctx.vars[name] = self.text(body['default'], ctx)
        if 'choice' in body:
            choices = [self.text(self.required(c, 'value'), ctx) for c in self.entities(body['choice'], 'choice')]
            if ctx.vars[name] not in choices:
                raise self.error(f"argument '{name}' is {ctx.vars[name]!r}, not one of {choices}")

    def do_let(self, body: dict, ctx: _Context, depth: int) -> None:
        ctx.vars[self.text(self.required(body, 'name'), ctx)] = self.text(self.required(body, 'value'), ctx)

    def do_set_env(self, body: dict, ctx: _Context, depth: int) -> None:
        ctx.env[self.text(self.required(body, 'name'), ctx)] = self.text(self.required(body, 'value'), ctx)

    def do_push_ros_namespace(self, body: dict, ctx: _Context, depth: int) -> None:
        ctx.ns = _join_ns(ctx.ns, self.text(self.required(body, 'namespace'), ctx))

    def do_group(self, body: dict, ctx: _Context, depth: int) -> None:
        scoped = self.flag(body.get('scoped', True), 'scoped', ctx)
        self.process(self.required(body, 'children'), ctx.copy() if scoped else ctx,
                     self.where + '.children', depth)

    def do_include(self, body: dict, ctx: _Context, depth: int) -> None:
        path = Path(self.text(self.required(body, 'file'), ctx))
        for arg in self.entities(body.get('arg', []), 'arg'):  # unscoped, like IncludeLaunchDescription
            ctx.vars[self.text(self.required(arg, 'name'), ctx)] = self.text(self.required(arg, 'value'), ctx)
        if not path.is_file():
            raise self.error(f'included launch file {path} does not exist')
        self.load_file(path, ctx, depth + 1)

    def do_node(self, body: dict, ctx: _Context, depth: int) -> None:
        pkg = self.text(self.required(body, 'pkg'), ctx)
        exe = self.text(self.required(body, 'exec'), ctx)
        exe_path = self.package_prefix(pkg) / 'lib' / pkg / exe
        if not (exe_path.is_file() and os.access(exe_path, os.X_OK)):
            raise self.error(f"executable '{exe}' not found in package '{pkg}' (no executable {exe_path})")
        ns = self.text(body['namespace'], ctx) if 'namespace' in body else None
        params: list = []
        for param in self.entities(body.get('param', []), 'param'):
            self.param(param, '', params, ctx)
        remaps = []
        for remap in self.entities(body.get('remap', []), 'remap'):
            if set(remap) != {'from', 'to'}:
                raise self.error(f"each remap needs exactly 'from' and 'to', got {sorted(remap)}")
            remaps.append((self.text(remap['from'], ctx), self.text(remap['to'], ctx)))
        env = dict(ctx.env)
        for item in self.entities(body.get('env', []), 'env'):
            env[self.text(self.required(item, 'name'), ctx)] = self.text(self.required(item, 'value'), ctx)
        self.specs.append(NodeSpec(
            pkg=pkg, exec=exe, name=self.text(body.get('name', ''), ctx),
            namespace=_join_ns(ctx.ns, ns) or '', params=params, remaps=remaps,
            args=shlex.split(self.text(body.get('args', ''), ctx)),
            ros_args=shlex.split(self.text(body.get('ros_args', ''), ctx)),
            output=self.text(body.get('output', 'log'), ctx), executable_path=str(exe_path), env=env))

    def param(self, param: dict, prefix: str, out: list, ctx: _Context) -> None:
        if 'from' in param:
            if set(param) != {'from'}:
                raise self.error(f"a param with 'from' takes no other keys, got {sorted(param)}")
            path = Path(self.text(param['from'], ctx)).absolute()
            if not path.is_file():
                raise self.error(f'parameter file {path} does not exist')
            out.append(str(path))
            return
        if set(param) - {'name', 'value', 'param'} or ('value' in param) == ('param' in param):
            raise self.error(f"a param needs 'name' and one of 'value' or nested 'param', got {sorted(param)}")
        name = prefix + self.text(self.required(param, 'name'), ctx)
        if 'param' in param:
            for nested in self.entities(param['param'], 'param'):
                self.param(nested, name + '.', out, ctx)
        else:
            out.append((name, self.param_value(name, param['value'], ctx)))

    def param_value(self, name: str, value: Any, ctx: _Context) -> Any:
        """Type strings the way launch_ros does: substitute, then read as YAML."""
        def typed(item: Any) -> Any:
            if not isinstance(item, str):
                return item
            text = self.text(item, ctx)
            try:
                return yaml.safe_load(text) if text else ''
            except yaml.YAMLError:
                raise self.error(f"param '{name}': {text!r} is not valid YAML (quote it)") from None
        result = [typed(v) for v in value] if isinstance(value, list) else typed(value)
        items = result if isinstance(result, list) else [result]
        if not items or any(type(v) not in (bool, int, float, str) for v in items) or (
                isinstance(result, list) and len({type(v) for v in items}) != 1):
            raise self.error(f"param '{name}': value {result!r} must be a bool, int, float, string or a "
                             'non-empty list of one of those types')
        return result


def _join_ns(base: str | None, ns: str | None) -> str | None:
    """launch_ros namespace rules: relative namespaces nest under pushed ones, absolute ones do not."""
    if not ns:
        joined = base
    elif ns.startswith('/') or not base:
        joined = ns
    else:
        joined = base.rstrip('/') + '/' + ns
    return None if joined is None else '/' + joined.strip('/')


def load_launch(path: str | os.PathLike, overrides: dict[str, str] | None = None) -> list[NodeSpec]:
    """Parse a launch YAML file (and its includes) into resolved node specs; raises LaunchError."""
    loader = _Loader()
    loader.load_file(Path(path), _Context(vars=dict(overrides or {})), 0)
    return loader.specs


# --------------------------------------------------------------------------- running

_CLEAN_STOP_CODES = {0, -signal.SIGINT, 128 + signal.SIGINT}
_print_lock = threading.Lock()


def _print_line(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


class LaunchRunner:
    """Runs node specs as child processes, each in its own process group so a signal reaches its whole tree."""

    def __init__(self, sink: Callable[[str], None] | None = None) -> None:
        self._sink = sink or _print_line
        self._procs: dict[str, subprocess.Popen] = {}
        self._codes: dict[str, int | None] = {}
        self._readers: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._stopping = False
        self.failed: str | None = None  # label of the first node that exited non-zero on its own

    def __enter__(self) -> LaunchRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, specs: list[NodeSpec], env: dict[str, str] | None = None) -> LaunchRunner:
        base = dict(os.environ if env is None else env)
        for spec in specs:
            label = stem = spec.name or spec.exec
            while label in self._procs:
                label = f'{stem}-{len(self._procs) + 1}'
            child_env = {**base, **spec.env}
            child_env.setdefault('PYTHONUNBUFFERED', '1')  # a pipe would otherwise hold Python output back
            try:
                proc = subprocess.Popen(spec.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=child_env, start_new_session=True)
            except OSError as exc:
                self.stop()
                raise LaunchError(f"cannot start node '{label}': {exc}") from exc
            with self._cond:
                self._procs[label] = proc
                self._codes[label] = None
            reader = threading.Thread(target=self._copy_output, args=(label, proc), daemon=True)
            reader.start()
            self._readers.append(reader)
            threading.Thread(target=self._watch, args=(label, proc), daemon=True).start()
        return self

    def _copy_output(self, label: str, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b''):
            self._sink(f"[{label}] {raw.decode('utf-8', 'replace').rstrip(chr(13) + chr(10))}")
        proc.stdout.close()

    def _watch(self, label: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        with self._cond:
            self._codes[label] = code
            if code != 0 and self.failed is None and not self._stopping:
                self.failed = label
            self._cond.notify_all()
        if code == 0:
            self._sink(f'[INFO] [{label}]: process has finished cleanly [pid {proc.pid}]')
        else:
            self._sink(f'[ERROR] [{label}]: process has died [pid {proc.pid}, exit code {code}]')

    def alive(self) -> list[str]:
        """Labels of the nodes still running."""
        with self._cond:
            return [label for label, code in self._codes.items() if code is None]

    @property
    def exit_codes(self) -> dict[str, int | None]:
        with self._cond:
            return dict(self._codes)

    def wait(self, timeout: float | None = None) -> dict[str, int | None]:
        """Block until every node has exited or one exited non-zero (then `failed` names it)."""
        with self._cond:
            self._cond.wait_for(lambda: self.failed is not None
                                or all(c is not None for c in self._codes.values()), timeout)
            return dict(self._codes)

    def stop(self, timeout: float = 10.0) -> dict[str, int | None]:
        """SIGINT every group (what Ctrl-C gives a node), then SIGTERM, then SIGKILL; returns exit codes."""
        with self._cond:
            self._stopping = True
        for sig, limit in ((signal.SIGINT, timeout), (signal.SIGTERM, min(timeout, 5.0)), (signal.SIGKILL, 5.0)):
            running = self.alive()
            if not running:
                break
            for label in running:
                try:
                    os.killpg(self._procs[label].pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            with self._cond:
                self._cond.wait_for(lambda: all(self._codes[lb] is not None for lb in running), limit)
        for reader in self._readers:  # flush what the nodes printed last
            reader.join(timeout=2.0)
        return self.exit_codes


class _Interrupted(Exception):
    """Raised from the signal handler to leave `wait()` at once."""


def run_launch(path: str | os.PathLike, args: list[str]) -> int:
    """`storefuse launch FILE name:=value ...`: start all nodes, stop them all on Ctrl-C or a failure."""
    overrides = {}
    for arg in args:
        name, sep, value = arg.partition(':=')
        if not sep or not name:
            print(f'storefuse launch: expected name:=value, got {arg!r}', file=sys.stderr)
            return 2
        overrides[name] = value
    try:
        specs = load_launch(path, overrides)
    except LaunchError as exc:
        print(f'storefuse launch: {exc}', file=sys.stderr)
        return 1
    state = {'armed': False, 'requested': False}

    def on_signal(signum: int, frame: object) -> None:
        state['requested'] = True
        if state['armed']:
            state['armed'] = False
            raise _Interrupted

    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    runner = LaunchRunner()
    try:
        try:
            runner.start(specs)
            state['armed'] = True
            if not state['requested']:
                runner.wait()
            state['armed'] = False
        except _Interrupted:
            pass
        except LaunchError as exc:
            print(f'storefuse launch: {exc}', file=sys.stderr)
            return 1
        finally:
            state['armed'] = False
            codes = runner.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state['requested']:
        return 0 if all(c in _CLEAN_STOP_CODES for c in codes.values()) else 1
    if runner.failed is not None:
        code = codes[runner.failed] or 1
        return code if code > 0 else 128 - code
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print('usage: launch_runner FILE.launch.yaml [name:=value ...]', file=sys.stderr)
        return 2
    return run_launch(argv[0], argv[1:])


if __name__ == '__main__':
    sys.exit(main())
