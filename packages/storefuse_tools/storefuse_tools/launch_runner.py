"""Start the nodes of a ROS 2 launch YAML file where the ROS launch packages are absent.

Only a subset of the launch_ros YAML frontend is understood, spelled exactly as launch_ros spells it,
so the same file also runs under real `ros2 launch` on store hardware. Anything outside the subset is
an error rather than silently ignored, so a file never means two different things.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    output: str = 'log'  # kept for reference: the runner shows all output, whatever this says
    executable_path: str = ''
    env: dict[str, str] = field(default_factory=dict)
    ros_args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        """Command line in the order launch_ros builds it (name, namespace, params, remaps)."""
        cmd = [self.executable_path or self.exec, *self.args]
        cmd += ['--ros-args', *self.ros_args] if self.ros_args else []
        cmd.append('--ros-args')
        cmd += ['-r', f'__node:={self.name}'] if self.name else []
        cmd += ['-r', f'__ns:={self.namespace}'] if self.namespace else []
        for p in self.params:
            cmd += ['-p', f'{p[0]}:={render_param(p[1])}'] if isinstance(p, tuple) else ['--params-file', p]
        for src, dst in self.remaps:
            cmd += ['-r', f'{src}:={dst}']
        return cmd


def render_param(value: Any) -> str:
    """Render a value as ROS 2 command-line YAML, so that rcl reads back the same type."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float) and not math.isfinite(value):
        return '.nan' if math.isnan(value) else ('.inf' if value > 0 else '-.inf')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # YAML 1.1 wants a dot in '1.0e-05'; rcl takes either
        mantissa, e, exponent = repr(value).partition('e')
        return mantissa + ('' if '.' in mantissa or not e else '.0') + e + exponent
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(render_param(v) for v in value) + ']'
    text = str(value)
    return "'" + text.replace("'", "''") + "'" if _would_retype(text) else text


def _would_retype(text: str) -> bool:
    """True when rcl would not read `text` back as this exact string (number, bool, YAML syntax)."""
    if not text or text != text.strip() or any(c in text for c in ':#,[]{}\'"'):
        return True
    try:
        float(text)  # rcl's strtod also takes forms YAML 1.1 does not (1e5, inf, nan)
        return True
    except ValueError:
        pass
    try:
        return yaml.safe_load(text) != text
    except yaml.YAMLError:
        return True


def _closing(text: str, k: int) -> int:
    """Index of the ')' that closes a substitution whose body starts at k (-1 if none)."""
    depth = 1
    while k < len(text):
        if text.startswith('$(', k):
            depth, k = depth + 1, k + 2
            continue
        depth -= text[k] == ')'
        if depth == 0:
            return k
        k += 1
    return -1


def _words(body: str) -> list[str]:
    """A substitution's words: whitespace separates, quotes group, a nested $(...) stays whole."""
    words, word, quote, k, started = [], '', '', 0, False
    while k < len(body):
        c = body[k]
        if body.startswith('$(', k):
            end = _closing(body, k + 2)
            if end < 0:
                raise ValueError('unbalanced $(')
            word, k, started = word + body[k:end + 1], end + 1, True
            continue
        if quote:
            quote, word = ('', word) if c == quote else (quote, word + c)
        elif c in '\'"':
            quote, started = c, True
        elif c.isspace():
            if started:
                words.append(word)
            word, started = '', False
        else:
            word, started = word + c, True
        k += 1
    if quote:
        raise ValueError('no closing quotation')
    return words + [word] if started else words


def _comparable(text: str) -> object:
    """What launch's equals/not-equals compare: booleans and numbers by value, else the text."""
    low = text.strip().lower()
    if low in ('true', 'false'):
        return low == 'true'
    try:
        return float(text)
    except ValueError:
        return text
_REQUIRED = object()
_KEYS = {  # action -> its attributes, as launch / launch_ros name them (plus 'if'/'unless' on all)
    'arg': {'name', 'default', 'description', 'choice'}, 'let': {'name', 'value'},
    'set_env': {'name', 'value'}, 'push-ros-namespace': {'namespace'}, 'push_ros_namespace': {'namespace'},
    'group': {'scoped', 'children'}, 'include': {'file', 'arg'},
    'node': {'pkg', 'exec', 'name', 'namespace', 'output', 'args', 'ros_args', 'param', 'remap', 'env',
             'exec_name'},
}


class _Loader:
    def __init__(self, overrides: dict[str, str]) -> None:
        self.specs: list[NodeSpec] = []
        self.vars = dict(overrides)  # launch configurations
        self.env: dict[str, str] = {}  # set_env overlay
        self.ns: str | None = None  # pushed ROS namespace
        self.path = Path()
        self.where = ''

    def error(self, message: str) -> LaunchError:
        return LaunchError(f'{self.path}: {self.where}: {message}')

    def text(self, value: Any) -> str:
        """A scalar attribute as a string, with substitutions done."""
        if isinstance(value, bool):
            return 'true' if value else 'false'
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise self.error(f'expected a string, got {type(value).__name__}: {value!r}')
        out, i = [], 0
        while (start := value.find('$(', i)) >= 0:  # substitutions nest: $(not-equals $(var a) b)
            end = _closing(value, start + 2)
            if end < 0:
                raise self.error(f'unbalanced substitution in {value!r}')
            out += [value[i:start], self.substitute(value[start + 2:end])]
            i = end + 1
        return ''.join(out) + value[i:]

    def attr(self, body: dict, key: str, default: Any = _REQUIRED) -> Any:
        if key not in body and default is _REQUIRED:
            raise self.error(f"missing required key '{key}'")
        return self.text(body[key]) if key in body else default

    def entities(self, body: dict, key: str) -> list[dict]:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(f"'{key}' must be a list of mappings")
        return value

    def substitute(self, inner: str) -> str:
        try:  # words first, then each word's own substitutions (a value with spaces stays one word)
            kind, *rest = [self.text(w) for w in _words(inner)] or ['']
        except ValueError as exc:
            raise self.error(f'cannot parse substitution $({inner}): {exc}') from None
        if kind == 'var' and len(rest) == 1:
            if rest[0] not in self.vars:
                raise self.error(f"launch argument or variable '{rest[0]}' is not defined")
            return self.vars[rest[0]]
        if kind == 'env' and len(rest) in (1, 2):
            value = self.env.get(rest[0], os.environ.get(rest[0]))
            if value is None and len(rest) == 1:
                raise self.error(f"environment variable '{rest[0]}' is not set and has no default")
            return rest[1] if value is None else value
        if kind in ('find-pkg-share', 'find-pkg-prefix') and len(rest) == 1:
            prefix = self.package_prefix(rest[0])
            return str(prefix / 'share' / rest[0]) if kind == 'find-pkg-share' else str(prefix)
        if kind in ('dirname', 'filename') and not rest:
            return str(self.path.parent) if kind == 'dirname' else self.path.name
        if kind in ('equals', 'not-equals') and len(rest) == 2:
            same = _comparable(rest[0]) == _comparable(rest[1])
            return 'true' if same == (kind == 'equals') else 'false'
        raise self.error(f'unsupported substitution $({inner}) (supported: var, env, find-pkg-share, '
                         'find-pkg-prefix, dirname, filename, equals, not-equals)')

    def package_prefix(self, pkg: str) -> Path:
        """The ament index lookup ros2 run does: the first prefix that holds the package marker."""
        prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
        for prefix in prefixes:
            if (Path(prefix) / 'share/ament_index/resource_index/packages' / pkg).exists():
                return Path(prefix)
        raise self.error(f"package '{pkg}' not found in AMENT_PREFIX_PATH ({len(prefixes)} prefixes; "
                         'is the workspace built and install/setup.bash sourced?)')

    def flag(self, value: Any, key: str) -> bool:
        word = self.text(value).strip().lower()
        if word not in ('true', 'false', '1', '0'):
            raise self.error(f"'{key}' must be true/false/1/0, got {word!r}")
        return word in ('true', '1')

    def load_file(self, path: Path, depth: int = 0) -> None:
        if depth > 20:
            raise LaunchError(f'{path}: includes nested more than 20 deep (a cycle?)')
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LaunchError(f'{path}: cannot load launch file: {exc}') from None
        if not isinstance(data, dict) or list(data) != ['launch']:
            raise LaunchError(f"{path}: the top level must be a single 'launch:' list")
        saved = self.path, self.where
        self.path = path.absolute()
        self.process(data['launch'] or [], 'launch', depth)
        self.path, self.where = saved

    def process(self, entries: Any, where: str, depth: int) -> None:
        self.where = where
        if not isinstance(entries, list):
            raise self.error('expected a list of actions')
        for i, item in enumerate(entries):
            self.where = f'{where}[{i}]'
            if not isinstance(item, dict) or len(item) != 1:
                raise self.error('each action must be a mapping with one key, the action name')
            ((kind, body),) = item.items()
            self.where = f'{where}[{i}].{kind}'
            if kind not in _KEYS:
                raise self.error(f"unknown action '{kind}' (supported: {', '.join(sorted(_KEYS))})")
            body = {'children': body} if kind == 'group' and isinstance(body, list) else body
            body = {'file': body} if kind == 'include' and isinstance(body, str) else body
            if not isinstance(body, dict):
                raise self.error('expected a mapping of attributes')
            allowed = _KEYS[kind] | {'if', 'unless'}
            if set(body) - allowed:
                raise self.error(f'unsupported key(s) {sorted(set(body) - allowed)} '
                                 f"(supported: {', '.join(sorted(allowed))})")
            if 'if' in body and 'unless' in body:
                raise self.error("'if' and 'unless' are mutually exclusive")
            if ('if' in body and not self.flag(body['if'], 'if')) or (
                    'unless' in body and self.flag(body['unless'], 'unless')):
                continue
            getattr(self, 'do_' + kind.replace('-', '_'))(body, depth)
            self.where = f'{where}[{i}].{kind}'

    def do_arg(self, body: dict, depth: int) -> None:
        name = str(body.get('name', ''))
        if not name:
            raise self.error("missing required key 'name'")
        if name not in self.vars:
            if 'default' not in body:
                raise self.error(f"required launch argument '{name}' was not provided ({name}:=VALUE)")
            self.vars[name] = self.text(body['default'])
        choices = [self.attr(c, 'value') for c in self.entities(body, 'choice')]
        if choices and self.vars[name] not in choices:
            raise self.error(f"argument '{name}' is {self.vars[name]!r}, not one of {choices}")

    def do_let(self, body: dict, depth: int) -> None:
        self.vars[self.attr(body, 'name')] = self.attr(body, 'value')

    def do_set_env(self, body: dict, depth: int) -> None:
        self.env[self.attr(body, 'name')] = self.attr(body, 'value')

    def do_push_ros_namespace(self, body: dict, depth: int) -> None:
        self.ns = _join_ns(self.ns, self.attr(body, 'namespace'))

    def do_group(self, body: dict, depth: int) -> None:
        if 'children' not in body:
            raise self.error("missing required key 'children'")
        scoped = self.flag(body.get('scoped', True), 'scoped')  # launch's default: scoped
        saved = dict(self.vars), dict(self.env), self.ns
        self.process(body['children'], self.where + '.children', depth)
        if scoped:
            self.vars, self.env, self.ns = saved

    def do_include(self, body: dict, depth: int) -> None:
        path = Path(self.attr(body, 'file'))
        for arg in self.entities(body, 'arg'):  # not scoped, like IncludeLaunchDescription
            self.vars[self.attr(arg, 'name')] = self.attr(arg, 'value')
        if not path.is_file():
            raise self.error(f'included launch file {path} does not exist')
        self.load_file(path, depth + 1)

    def do_node(self, body: dict, depth: int) -> None:
        pkg, exe = self.attr(body, 'pkg'), self.attr(body, 'exec')
        exe_path = self.package_prefix(pkg) / 'lib' / pkg / exe
        if not (exe_path.is_file() and os.access(exe_path, os.X_OK)):
            raise self.error(f"executable '{exe}' not found in package '{pkg}' (no executable {exe_path})")
        params: list = []
        for param in self.entities(body, 'param'):
            self.param(param, '', params)
        remaps = []
        for remap in self.entities(body, 'remap'):
            if set(remap) != {'from', 'to'}:
                raise self.error(f"each remap needs exactly 'from' and 'to', got {sorted(remap)}")
            remaps.append((self.attr(remap, 'from'), self.attr(remap, 'to')))
        env = dict(self.env)
        env.update((self.attr(e, 'name'), self.attr(e, 'value')) for e in self.entities(body, 'env'))
        self.specs.append(NodeSpec(
            pkg=pkg, exec=exe, name=self.attr(body, 'name', ''), params=params, remaps=remaps,
            namespace=_join_ns(self.ns, self.attr(body, 'namespace', None)) or '',
            args=shlex.split(self.attr(body, 'args', '')),
            ros_args=shlex.split(self.attr(body, 'ros_args', '')),
            output=self.attr(body, 'output', 'log'), executable_path=str(exe_path), env=env))

    def param(self, param: dict, prefix: str, out: list) -> None:
        if 'from' in param:
            path = Path(self.attr(param, 'from')).absolute()
            if set(param) != {'from'} or not path.is_file():
                raise self.error(f"param 'from' must be an existing file, alone; got {sorted(param)}: {path}")
            out.append(str(path))
        elif set(param) - {'name', 'value', 'param'} or ('value' in param) == ('param' in param):
            raise self.error(f"a param needs 'name' and either 'value' or nested 'param'; "
                             f'got {sorted(param)}')
        elif 'param' in param:
            for nested in self.entities(param, 'param'):
                self.param(nested, prefix + self.attr(param, 'name') + '.', out)
        else:
            name = prefix + self.attr(param, 'name')
            out.append((name, self.param_value(name, param['value'])))

    def param_value(self, name: str, value: Any) -> Any:
        """Type string values the way launch_ros does: substitute, then read as YAML."""
        def typed(item: Any) -> Any:
            if not isinstance(item, str):
                return item
            text = self.text(item)
            try:
                return yaml.safe_load(text) if text else ''
            except yaml.YAMLError:
                raise self.error(f"param '{name}': {text!r} is not valid YAML (quote it)") from None
        result = [typed(v) for v in value] if isinstance(value, list) else typed(value)
        items = result if isinstance(result, list) else [result]
        if not items or any(type(v) not in (bool, int, float, str) for v in items) or (
                isinstance(result, list) and len({type(v) for v in items}) != 1):
            raise self.error(f"param '{name}': {result!r} is not a bool, int, float, string or a "
                             'non-empty list of one of those')
        return result


def _join_ns(base: str | None, ns: str | None) -> str | None:
    """launch_ros rules: a relative namespace nests under the pushed one, an absolute one does not."""
    joined = base if not ns else ns if ns.startswith('/') or not base else base.rstrip('/') + '/' + ns
    return None if joined is None else '/' + joined.strip('/')


def load_launch(path: str | os.PathLike, overrides: dict[str, str] | None = None) -> list[NodeSpec]:
    """Parse a launch YAML file (and its includes) into resolved node specs; raises LaunchError."""
    loader = _Loader(overrides or {})
    loader.load_file(Path(path))
    return loader.specs


_CLEAN_STOP_CODES = {0, -signal.SIGINT, 128 + signal.SIGINT}


def _print_line(line: str) -> None:
    sys.stdout.write(line + '\n')  # one write per line, so lines from several threads do not mix
    sys.stdout.flush()


class LaunchRunner:
    """Runs node specs as child processes, each in its own process group so signals reach whole trees."""

    def __init__(self, sink: Callable[[str], None] | None = None) -> None:
        self._sink = sink or _print_line
        self._procs: dict[str, subprocess.Popen] = {}
        self._codes: dict[str, int | None] = {}
        self._readers: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._specs: dict[str, tuple[NodeSpec, dict[str, str]]] = {}
        self._killed: set[str] = set()   # killed on purpose (fault injection): not a failure
        self.failed: str | None = None  # label of the first node that exited non-zero by itself

    def __enter__(self) -> LaunchRunner:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, specs: list[NodeSpec], env: dict[str, str] | None = None) -> None:
        base = dict(os.environ if env is None else env)
        for spec in specs:
            label = stem = spec.name or spec.exec
            while label in self._procs:
                label = f'{stem}-{len(self._procs) + 1}'
            child_env = {'PYTHONUNBUFFERED': '1', **base, **spec.env}  # else a pipe holds Python output back
            try:
                proc = subprocess.Popen(spec.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=child_env, start_new_session=True)
            except OSError as exc:
                self.stop()
                raise LaunchError(f"cannot start node '{label}': {exc}") from exc
            with self._cond:
                self._procs[label], self._codes[label] = proc, None
                self._specs[label] = (spec, base)
            self._readers.append(threading.Thread(target=self._copy_output, args=(label, proc), daemon=True))
            self._readers[-1].start()
            threading.Thread(target=self._watch, args=(label, proc), daemon=True).start()

    def _copy_output(self, label: str, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b''):
            self._sink(f"[{label}] {raw.decode('utf-8', 'replace').rstrip(chr(10)).rstrip(chr(13))}")
        proc.stdout.close()

    def _watch(self, label: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        with self._cond:
            self._codes[label] = code
            if code != 0 and self.failed is None and not self._stopping and label not in self._killed:
                self.failed = label
            self._cond.notify_all()
        self._sink(f'[INFO] [{label}]: process has finished cleanly [pid {proc.pid}]' if code == 0 else
                   f'[ERROR] [{label}]: process has died [pid {proc.pid}, exit code {code}]')

    def kill(self, label: str) -> int | None:
        """SIGKILL one node, as a crash or power cut would (fault injection); its exit code."""
        with self._cond:
            self._killed.add(label)
            proc = self._procs[label]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        with self._cond:
            self._cond.wait_for(lambda: self._codes[label] is not None, 10.0)
            return self._codes[label]

    def restart(self, label: str) -> None:
        """Start a stopped node again with its original command line and environment."""
        spec, env = self._specs[label]
        with self._cond:
            del self._procs[label], self._codes[label]
        self.start([spec], env)

    def alive(self) -> list[str]:
        """Labels of the nodes still running."""
        with self._cond:
            return [label for label, code in self._codes.items() if code is None]

    def wait(self, timeout: float | None = None) -> dict[str, int | None]:
        """Block until every node has exited or one exited non-zero (`failed` names it); exit codes."""
        with self._cond:
            self._cond.wait_for(lambda: self.failed is not None or None not in self._codes.values(), timeout)
            return dict(self._codes)

    def stop(self, timeout: float = 10.0) -> dict[str, int | None]:
        """SIGINT every group (what Ctrl-C gives a node), then SIGTERM, then SIGKILL; exit codes."""
        with self._cond:
            self._stopping = True
        stages = ((signal.SIGINT, timeout), (signal.SIGTERM, min(timeout, 5.0)), (signal.SIGKILL, 5.0))
        for sig, limit in stages:
            running = self.alive()
            for label in running:
                try:
                    os.killpg(self._procs[label].pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            with self._cond:
                if not self._cond.wait_for(lambda: None not in self._codes.values(), limit if running else 0):
                    continue
            break
        for reader in self._readers:  # so that the nodes' last lines are out before returning
            reader.join(timeout=2.0)
        with self._cond:
            return dict(self._codes)


class _Interrupted(Exception):
    """Raised by the signal handler to leave `wait()` at once."""


def run_launch(path: str | os.PathLike, args: list[str]) -> int:
    """`storefuse launch FILE name:=value ...`: start all nodes; stop them all on Ctrl-C or a failure."""
    overrides = dict(a.partition(':=')[::2] for a in args)
    bad = [a for a in args if ':=' not in a or a.startswith(':=')]
    if bad:
        print(f'storefuse launch: expected name:=value, got {bad[0]!r}', file=sys.stderr)
        return 2
    try:
        specs = load_launch(path, overrides)
    except LaunchError as exc:
        print(f'storefuse launch: {exc}', file=sys.stderr)
        return 1
    state = {'armed': False, 'requested': False}

    def on_signal(signum: int, frame: object) -> None:
        state['requested'] = True
        if state['armed']:  # only while waiting: never in the middle of starting or stopping
            state['armed'] = False
            raise _Interrupted

    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    runner = LaunchRunner()
    try:
        runner.start(specs)
        state['armed'] = True
        if not state['requested']:
            runner.wait()
    except _Interrupted:
        pass
    except LaunchError as exc:
        print(f'storefuse launch: {exc}', file=sys.stderr)
        return 1
    finally:
        state['armed'] = False
        codes = runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state['requested']:
        return 0 if all(c in _CLEAN_STOP_CODES for c in codes.values()) else 1
    if runner.failed is not None:
        code = codes[runner.failed] or 1
        return code if code > 0 else 128 - code
    return 0


if __name__ == '__main__':
    sys.exit(run_launch(sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else 2)
