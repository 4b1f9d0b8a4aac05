"""`storefuse play BAG`: the live player (storefuse_nodes.player) in this process, with keys.

Republishes a bag's recorded CDR bytes with their original timing and publishes /clock, so nodes
started with use_sim_time:=true replay the run as recorded. In a terminal: space pauses/resumes,
s steps one message (while paused), q stops. Otherwise the player's services do the same:
/player/set_paused (std_srvs/SetBool), /player/step (std_srvs/Trigger). cli.py calls register(app).
"""
from __future__ import annotations

import json
import math
import os
import select
import sys
from pathlib import Path
from typing import List, Optional

import typer

KEYS_HELP = "keys: space = pause/resume, s = step one message (paused), q = stop"


class Keyboard:
    """Single keys from a terminal without Enter (cbreak mode), put back as it was on exit."""

    def __init__(self, stream=None, out=None):
        self.stream, self.out = stream or sys.stdin, out or sys.stderr
        self.fd, self.saved = None, None

    def __enter__(self):
        # only a terminal we are in the foreground of (a background job would be stopped on reading it)
        if self.stream.isatty() and os.tcgetpgrp(self.stream.fileno()) == os.getpgrp():
            import termios
            import tty
            self.fd = self.stream.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            self.say(KEYS_HELP)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def say(self, line: str) -> None:
        print(f"[play] {line}", file=self.out, flush=True)

    def poll(self, node) -> None:
        """Handle the keys typed since the last turn of the player's loop."""
        while self.fd is not None and select.select([self.fd], [], [], 0)[0]:
            key = os.read(self.fd, 1).decode(errors="replace")
            if not key:                       # the terminal went away: stop reading it
                self.fd = None
                return
            at = node.bag_s(node.playback.clock_ns())
            if key == " ":
                node.set_paused(not node.playback.clock.paused)
                self.say(f"{'paused' if node.playback.clock.paused else 'playing'} at {at:.3f} s")
            elif key in "sS":
                self.say(f"step: {node.step_one()}")
            elif key in "qQ":
                self.say(f"stopped at {at:.3f} s")
                node.stopped = True


def player_args(bag: Path, rate: float, start: float, loop: bool, topics: list[str], exclude: list[str],
                paused: bool, wait_for: list[str], linger: float, delay: float) -> list[str]:
    """The player node's parameters as command-line ROS arguments (lists as JSON: valid YAML, and a
    glob such as '*' stays a string)."""
    params = {"bag": str(bag), "rate": "inf" if math.isinf(rate) else repr(float(rate)), "start_s": repr(start),
              "loop": str(loop).lower(), "paused": str(paused).lower(), "linger_s": repr(linger),
              "delay_s": repr(delay)}
    for name, values in (("topics", topics), ("exclude", exclude), ("wait_for", wait_for)):
        if values:
            params[name] = json.dumps(values)
    args = ["storefuse-play", "--ros-args"]
    for name, value in params.items():
        args += ["-p", f"{name}:={value}"]
    return args


def register(app: typer.Typer) -> None:
    @app.command()
    def play(bag: Path = typer.Argument(..., help="a rosbag2 folder"),
             rate: float = typer.Option(1.0, help="bag seconds per wall second (inf: as fast as possible)"),
             start: float = typer.Option(0.0, help="start this many seconds into the bag"),
             loop: bool = typer.Option(False, "--loop", help="start over at the end (bag time jumps back)"),
             topic: Optional[List[str]] = typer.Option(None, "--topic", help="play only these (glob; repeatable)"),
             exclude: Optional[List[str]] = typer.Option(
                 None, "--exclude", help="do not play these (glob; repeatable). Always excluded unless named "
                 "exactly with --topic: /store/receipts/*, /store/review/*, /clock, /rosout, /parameter_events"),
             paused: bool = typer.Option(False, "--paused", help="start paused (step with s or ~/step)"),
             wait_for: Optional[List[str]] = typer.Option(
                 None, "--wait-for", help="start once these topics have a subscriber (glob, /clock, or 'receipt' "
                 "for every input of a receipt node); repeatable"),
             linger: float = typer.Option(3.0, help="bag seconds /clock keeps running after the last message"),
             delay: float = typer.Option(1.0, help="wall seconds /clock holds the start once subscribers are there"),
             save_layout: Optional[Path] = typer.Option(
                 None, "--save-layout", help="first write the store layout the bag was recorded with to this "
                 "file, for the receipt node under test (store:=FILE)")):
        """Play a bag live: recorded CDR bytes with their original timing, and /clock (nodes: use_sim_time:=true)."""
        from storefuse_core.errors import StorefuseError
        from storefuse_core.playback import check_rate
        from storefuse_tools.paths import ros_env
        try:
            check_rate(rate)
        except StorefuseError as exc:
            typer.echo(f"storefuse: {exc}", err=True)
            raise typer.Exit(2) from None
        if save_layout is not None:
            from storefuse_core.playback import save_layout as write_layout
            try:
                typer.echo(f"[play] layout of {bag}: {write_layout(bag, save_layout)}", err=True)
            except StorefuseError as exc:
                typer.echo(f"storefuse: {exc}", err=True)
                raise typer.Exit(2) from None
        os.environ.update(ros_env())
        from storefuse_nodes.player import main as player_main
        args = player_args(bag, rate, start, loop, topic or [], exclude or [], paused, wait_for or [], linger, delay)
        with Keyboard() as keys:
            code = player_main(args, controls=keys.poll)
        raise typer.Exit(code)
