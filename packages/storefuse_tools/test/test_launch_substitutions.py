"""Nested substitutions and launch's equals / not-equals, as the store launch file uses them
(`if: $(not-equals $(var depth_camera) none)`)."""

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

if importlib.util.find_spec('storefuse_tools') is None:  # workspace not sourced: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storefuse_tools.launch_runner import LaunchError, _Loader, load_launch  # noqa: E402


def expand(text: str, **variables: str) -> str:
    return _Loader(variables).text(text)


@pytest.mark.parametrize(('text', 'expected'), [
    ('$(equals a a)', 'true'),
    ('$(equals a b)', 'false'),
    ('$(not-equals $(var cam) none)', 'true'),
    ('$(not-equals $(var none_word) none)', 'false'),
    ('$(equals $(var flag) true)', 'true'),          # booleans compare by value: True == true
    ('$(equals 1.0 1)', 'true'),                     # numbers too
    ("$(equals '$(var spaced)' 'a b')", 'true'),     # a value with spaces stays one word
    ('$(equals "" "")', 'true'),
    ('pre_$(var cam)_$(var cam)', 'pre_cam9_cam9'),
    ('no substitution (parens are text)', 'no substitution (parens are text)'),
])
def test_nested_and_comparison_substitutions(text, expected):
    assert expand(text, cam='cam9', none_word='none', flag='True', spaced='a b') == expected


@pytest.mark.parametrize(('text', 'message'), [
    ('$(not-equals $(var cam) none', 'unbalanced'),
    ('$(equals a)', 'unsupported substitution'),
    ("$(equals 'a b)", 'cannot parse'),
])
def test_bad_substitutions_are_one_clear_error(text, message):
    with pytest.raises(LaunchError, match=message):
        expand(text, cam='cam9')


def test_a_condition_built_from_a_comparison(tmp_path, monkeypatch):
    root = tmp_path / 'install'
    (root / 'share/ament_index/resource_index/packages').mkdir(parents=True)
    (root / 'share/ament_index/resource_index/packages/fakepkg').write_text('')
    (root / 'lib/fakepkg').mkdir(parents=True)
    (root / 'lib/fakepkg/hello').write_text('#!/bin/sh\n')
    (root / 'lib/fakepkg/hello').chmod(0o755)
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(root))
    launch = tmp_path / 'd.launch.yaml'
    launch.write_text(textwrap.dedent("""
        launch:
          - arg: {name: depth_camera, default: none}
          - node: {pkg: fakepkg, exec: hello, name: '$(var depth_camera)', if: '$(not-equals $(var depth_camera) none)'}
          - node: {pkg: fakepkg, exec: hello, name: always}
        """))
    assert [s.name for s in load_launch(launch, {})] == ['always']
    assert [s.name for s in load_launch(launch, {'depth_camera': 'cam4'})] == ['cam4', 'always']
