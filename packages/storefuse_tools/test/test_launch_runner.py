"""Tests of the launch YAML runner: parsing needs no ROS; process tests use a fake ament prefix."""

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

PKG_DIR = Path(__file__).resolve().parents[1]
if importlib.util.find_spec('storefuse_tools') is None:  # workspace not sourced: use the source tree
    sys.path.insert(0, str(PKG_DIR))

from storefuse_tools import launch_runner  # noqa: E402
from storefuse_tools.launch_runner import (  # noqa: E402
    LaunchError,
    LaunchRunner,
    NodeSpec,
    load_launch,
    render_param,
    run_launch,
)

HELLO = f"""#!{sys.executable}
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})  # no race with a SIGINT sent right away
print('argv', *sys.argv[1:], flush=True)
signal.sigwait({{signal.SIGINT}})
print('bye', flush=True)
"""
FAIL = f"""#!{sys.executable}
print('failing', flush=True)
raise SystemExit(3)
"""


@pytest.fixture
def prefix(tmp_path, monkeypatch):
    """An install prefix holding package 'fakepkg' with executables 'hello' and 'fail'."""
    root = tmp_path / 'install'
    index = root / 'share/ament_index/resource_index/packages'
    index.mkdir(parents=True)
    (index / 'fakepkg').write_text('')
    (root / 'share/fakepkg').mkdir()
    (root / 'lib/fakepkg').mkdir(parents=True)
    for name, body in (('hello', HELLO), ('fail', FAIL)):
        exe = root / 'lib/fakepkg' / name
        exe.write_text(body)
        exe.chmod(0o755)
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(root))
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_args_defaults_and_command_line_overrides(prefix, tmp_path):
    launch = write(tmp_path / 'a.launch.yaml', """
        launch:
          - arg: {name: robot, default: cart}
          - arg: {name: rate, default: '30', description: camera rate in Hz}
          - let: {name: full, value: $(var robot)_node}
          - node:
              pkg: fakepkg
              exec: hello
              name: $(var full)
              param: [{name: rate, value: $(var rate)}]
        """)
    [spec] = load_launch(launch, {})
    assert (spec.name, spec.params) == ('cart_node', [('rate', 30)])
    assert spec.executable_path == str(prefix / 'lib/fakepkg/hello')
    [spec] = load_launch(launch, {'robot': 'kiosk', 'rate': '12.5'})
    assert (spec.name, spec.params) == ('kiosk_node', [('rate', 12.5)])


def test_required_arg_and_choices(prefix, tmp_path):
    launch = write(tmp_path / 'r.launch.yaml', """
        launch:
          - arg: {name: mode, choice: [{value: live}, {value: replay}]}
        """)
    with pytest.raises(LaunchError, match="required launch argument 'mode'"):
        load_launch(launch, {})
    with pytest.raises(LaunchError, match="not one of"):
        load_launch(launch, {'mode': 'other'})
    assert load_launch(launch, {'mode': 'replay'}) == []


def test_group_namespaces_and_scoping(prefix, tmp_path):
    launch = write(tmp_path / 'g.launch.yaml', """
        launch:
          - let: {name: tag, value: outer}
          - group:
              children:
                - push-ros-namespace: {namespace: store1}
                - let: {name: tag, value: inner}
                - node: {pkg: fakepkg, exec: hello, name: a_$(var tag), namespace: cams}
                - node: {pkg: fakepkg, exec: hello, name: b, namespace: /abs}
                - node: {pkg: fakepkg, exec: hello, name: c}
          - node: {pkg: fakepkg, exec: hello, name: d_$(var tag)}
          - group:
              scoped: false
              children:
                - push_ros_namespace: {namespace: /leak/}
          - node: {pkg: fakepkg, exec: hello, name: e, namespace: sub}
        """)
    got = [(s.name, s.namespace) for s in load_launch(launch, {})]
    assert got == [('a_inner', '/store1/cams'), ('b', '/abs'), ('c', '/store1'), ('d_outer', ''),
                   ('e', '/leak/sub')]


def test_include_passes_args_and_dirname_is_the_included_file(prefix, tmp_path):
    write(tmp_path / 'sub/p.yaml', '/**:\n  ros__parameters: {x: 1}\n')
    write(tmp_path / 'sub/inner.launch.yaml', """
        launch:
          - arg: {name: who, default: nobody}
          - node: {pkg: fakepkg, exec: hello, name: $(var who), param: [{from: $(dirname)/p.yaml}]}
        """)
    launch = write(tmp_path / 'outer.launch.yaml', """
        launch:
          - include:
              file: $(dirname)/sub/inner.launch.yaml
              arg: [{name: who, value: greeter}]
          - node: {pkg: fakepkg, exec: hello, name: $(var who)_after, args: $(dirname)}
        """)
    specs = load_launch(launch, {})
    assert [s.name for s in specs] == ['greeter', 'greeter_after']  # include is unscoped, as in launch
    assert specs[0].params == [str(tmp_path / 'sub/p.yaml')]
    assert specs[1].args == [str(tmp_path)]  # back in the outer file


def test_params_remaps_args_and_command(prefix, tmp_path):
    write(tmp_path / 'params.yaml', '/**:\n  ros__parameters: {x: 1}\n')
    launch = write(tmp_path / 'p.launch.yaml', """
        launch:
          - node:
              pkg: fakepkg
              exec: hello
              name: cam
              namespace: store
              args: --verbose "two words"
              ros_args: --log-level warn
              param:
                - {from: $(dirname)/params.yaml}
                - {name: count, value: 3}
                - {name: ratio, value: '0.5'}
                - {name: label, value: "'42'"}
                - {name: enabled, value: 'true'}
                - {name: ids, value: [1, 2]}
                - {name: names, value: '[a, b]'}
                - {name: gains, param: [{name: kp, value: 1.5}]}
              remap: [{from: image, to: /cam/image}]
        """)
    [spec] = load_launch(launch, {})
    assert spec.params == [str(tmp_path / 'params.yaml'), ('count', 3), ('ratio', 0.5), ('label', '42'),
                           ('enabled', True), ('ids', [1, 2]), ('names', ['a', 'b']), ('gains.kp', 1.5)]
    assert spec.command() == [
        str(prefix / 'lib/fakepkg/hello'), '--verbose', 'two words', '--ros-args', '--log-level', 'warn',
        '--ros-args', '-r', '__node:=cam', '-r', '__ns:=/store',
        '--params-file', str(tmp_path / 'params.yaml'), '-p', 'count:=3', '-p', 'ratio:=0.5',
        '-p', "label:='42'", '-p', 'enabled:=true', '-p', 'ids:=[1, 2]', '-p', 'names:=[a, b]',
        '-p', 'gains.kp:=1.5', '-r', 'image:=/cam/image']


def test_command_of_a_bare_node():
    assert NodeSpec(pkg='p', exec='e', executable_path='/x/e').command() == ['/x/e', '--ros-args']


def test_if_and_unless(prefix, tmp_path):
    launch = write(tmp_path / 'c.launch.yaml', """
        launch:
          - arg: {name: use_cam, default: 'true'}
          - node: {pkg: fakepkg, exec: hello, name: cam, if: $(var use_cam)}
          - node: {pkg: fakepkg, exec: hello, name: sim, unless: $(var use_cam)}
          - group: {if: '0', children: [node: {pkg: fakepkg, exec: hello, name: never}]}
        """)
    assert [s.name for s in load_launch(launch, {})] == ['cam']
    assert [s.name for s in load_launch(launch, {'use_cam': 'False'})] == ['sim']
    assert [s.name for s in load_launch(launch, {'use_cam': '1'})] == ['cam']
    with pytest.raises(LaunchError, match='true/false/1/0'):
        load_launch(launch, {'use_cam': 'maybe'})


def test_env_find_pkg_share_and_set_env(prefix, tmp_path, monkeypatch):
    monkeypatch.setenv('STORE_ID', 'S7')
    monkeypatch.delenv('NOT_SET_ANYWHERE', raising=False)
    launch = write(tmp_path / 'e.launch.yaml', """
        launch:
          - group:
              children:
                - set_env: {name: ROS_DOMAIN_ID, value: '42'}
                - node:
                    pkg: fakepkg
                    exec: hello
                    name: n_$(env STORE_ID)
                    args: $(find-pkg-share fakepkg) $(env NOT_SET_ANYWHERE fallback) $(env ROS_DOMAIN_ID)
          - node: {pkg: fakepkg, exec: hello, name: plain}
        """)
    inner, plain = load_launch(launch, {})
    assert inner.name == 'n_S7'
    assert inner.args == [str(prefix / 'share/fakepkg'), 'fallback', '42']
    assert (inner.env, plain.env) == ({'ROS_DOMAIN_ID': '42'}, {})


@pytest.mark.parametrize(('entry', 'message'), [
    ('bogus: {name: x}', "unknown action 'bogus'"),
    ('node: {pkg: fakepkg, exec: hello, parameters: []}', r"unsupported key\(s\) \['parameters'\]"),
    ('node: {pkg: nopkg, exec: hello}', "package 'nopkg' not found in AMENT_PREFIX_PATH"),
    ('node: {pkg: fakepkg, exec: nothere}', "executable 'nothere' not found in package 'fakepkg'"),
    ('node: {pkg: fakepkg, exec: hello, name: $(eval 1 + 1)}', r'unsupported substitution \$\(eval'),
    ('node: {pkg: fakepkg, exec: hello, name: $(var undefined)}', "'undefined' is not defined"),
    ("node: {pkg: fakepkg, exec: hello, param: [{name: p, value: [1, 'a']}]}", "param 'p'"),
    ('node: {pkg: fakepkg, exec: hello, param: [{from: /no/such.yaml}]}', 'must be an existing file'),
    ('include: {file: /no/such.launch.yaml}', 'does not exist'),
])
def test_errors_name_the_file_and_the_entry(prefix, tmp_path, entry, message):
    launch = write(tmp_path / 'bad.launch.yaml', f'launch:\n  - {entry}\n')
    with pytest.raises(LaunchError, match=message) as info:
        load_launch(launch, {})
    assert str(info.value).startswith(f'{launch}: launch[0].')


def test_top_level_must_be_launch(tmp_path):
    with pytest.raises(LaunchError, match="single 'launch:' list"):
        load_launch(write(tmp_path / 'x.yaml', 'nodes: []\n'), {})


@pytest.mark.parametrize(('value', 'rendered'), [
    (True, 'true'), (False, 'false'), (3, '3'), (-2, '-2'), (2.0, '2.0'), (1e-05, '1.0e-05'),
    (2.5e+20, '2.5e+20'),
    ('hello', 'hello'), ('/cam/image', '/cam/image'), ('true', "'true'"), ('yes', "'yes'"), ('42', "'42'"),
    ('1e5', "'1e5'"), ('', "''"), ("it's", "'it''s'"), ('a, b', "'a, b'"), ('null', "'null'"),
    ([1, 2], '[1, 2]'), (['a', 'b'], '[a, b]'), ([True], '[true]'), (['1', 'x'], "['1', x]"),
])
def test_render_param_keeps_the_type(value, rendered):
    assert render_param(value) == rendered
    assert yaml.safe_load(rendered) == value


def _collect(prefix_of_interest):
    lines, seen = [], threading.Event()

    def sink(line):
        lines.append(line)
        if line.startswith(prefix_of_interest):
            seen.set()
    return lines, seen, sink


def test_runner_prefixes_output_and_stops_cleanly(prefix, tmp_path):
    launch = write(tmp_path / 'run.launch.yaml', """
        launch:
          - node:
              pkg: fakepkg
              exec: hello
              name: greeter
              param: [{name: msg, value: hi}]
              remap: [{from: chatter, to: talk}]
        """)
    lines, seen, sink = _collect('[greeter] argv')
    with LaunchRunner(sink=sink) as runner:
        runner.start(load_launch(launch, {}))
        assert seen.wait(20), lines
        assert runner.alive() == ['greeter']
        codes = runner.stop(timeout=10)
    assert codes == {'greeter': 0}
    argv_line = next(line for line in lines if line.startswith('[greeter] argv'))
    assert argv_line.split()[2:] == ['--ros-args', '-r', '__node:=greeter', '-p', 'msg:=hi',
                                     '-r', 'chatter:=talk']
    assert '[greeter] bye' in lines
    assert runner.alive() == []


def test_runner_wait_reports_the_failing_node(prefix, tmp_path):
    launch = write(tmp_path / 'f.launch.yaml', """
        launch:
          - node: {pkg: fakepkg, exec: hello, name: greeter}
          - node: {pkg: fakepkg, exec: fail, name: broken}
        """)
    lines, greeter_up, sink = _collect('[greeter] argv')
    with LaunchRunner(sink=sink) as runner:
        runner.start(load_launch(launch, {}))
        codes = runner.wait(timeout=20)
        assert runner.failed == 'broken'
        assert codes['broken'] == 3
        assert greeter_up.wait(20), lines  # a SIGINT before its handler is set up would not be clean
        assert runner.stop(timeout=10) == {'greeter': 0, 'broken': 3}
    assert '[broken] failing' in lines
    assert any(line.startswith('[ERROR] [broken]: process has died') for line in lines)


def test_run_launch_returns_the_failing_code_and_rejects_bad_args(prefix, tmp_path, capsys):
    launch = write(tmp_path / 'f.launch.yaml', """
        launch:
          - node: {pkg: fakepkg, exec: hello, name: greeter}
          - node: {pkg: fakepkg, exec: fail, name: broken}
        """)
    result = []  # in a thread with a deadline, so that a regression fails instead of hanging the suite
    worker = threading.Thread(target=lambda: result.append(run_launch(launch, [])), daemon=True)
    worker.start()
    worker.join(60)
    assert result == [3]
    out = capsys.readouterr().out
    assert '[broken] failing' in out
    assert '[greeter]: process has' in out  # the healthy node was stopped too (maybe while starting)
    assert run_launch(launch, ['oops']) == 2
    assert run_launch(tmp_path / 'missing.launch.yaml', []) == 1


def test_ctrl_c_stops_every_node_and_exits_0(prefix, tmp_path):
    launch = write(tmp_path / 'i.launch.yaml', """
        launch:
          - node: {pkg: fakepkg, exec: hello, name: one}
          - node: {pkg: fakepkg, exec: hello, name: two}
        """)
    code = ('import sys; from storefuse_tools.launch_runner import run_launch; '
            'sys.exit(run_launch(sys.argv[1], []))')
    source = str(Path(launch_runner.__file__).parents[1])  # the same module this test imported
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([source, os.environ.get('PYTHONPATH', '')])}
    proc = subprocess.Popen([sys.executable, '-c', code, str(launch)], stdout=subprocess.PIPE, text=True,
                            env=env)
    lines, both_up = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip('\n'))
            if sum(x.startswith(('[one] argv', '[two] argv')) for x in lines) == 2:
                both_up.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert both_up.wait(20), lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    reader.join(5)
    assert {'[one] bye', '[two] bye'} <= set(lines)
