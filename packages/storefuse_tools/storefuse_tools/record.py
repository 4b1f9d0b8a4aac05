"""`storefuse record`: the recorder node run in this process, with a live progress line.

In-process (not a child) so the progress shows the recorder's own counts as they change, and a
Ctrl-C closes the bag before the command returns.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

from storefuse_core.recording import RecordStats


def progress_table(stats: RecordStats, bag, elapsed_s: float, now_s: float):
    """Messages, MB, messages/s per topic group, and messages known lost."""
    from rich.table import Table
    rows = stats.groups(now_s)
    dropped = stats.dropped()
    table = Table(box=None, pad_edge=False, show_edge=False,
                  title=f"[bold]recording[/] {bag.path}  {int(elapsed_s) // 60:02d}:{int(elapsed_s) % 60:02d}  "
                        f"{len(bag.files)} file(s)  "
                        + (f"[red]{dropped} dropped[/]" if dropped else "[green]0 dropped[/]"),
                  title_justify="left")
    for col in ("topics", "messages", "MB", "msg/s", "dropped", "missing"):
        table.add_column(col, justify="left" if col == "topics" else "right")
    for r in rows:
        table.add_row(r["group"], f"{r['messages']:,}", f"{r['bytes'] / 1e6:.1f}", f"{r['rate']:.0f}",
                      str(r["dropped"]), str(r["missing"]))
    total = sum(r["messages"] for r in rows)
    table.add_row("[bold]all[/]", f"[bold]{total:,}[/]", f"[bold]{sum(r['bytes'] for r in rows) / 1e6:.1f}[/]",
                  f"[bold]{sum(r['rate'] for r in rows):.0f}[/]", f"[bold]{dropped}[/]",
                  f"[bold]{sum(r['missing'] for r in rows)}[/]")
    table.caption = "dropped: publisher sequence gaps; missing: per watermark counts and sample numbers"
    table.caption_justify = "left"
    return table


def record(out: Path, topics: list[str] | None, store: str, compression: str, split_mb: float, split_s: float,
           duration_s: float | None, progress: bool, as_json: bool) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rich.console import Console
    from rich.live import Live

    from storefuse_nodes.common import STOPPED, clean_stop
    from storefuse_nodes.recorder import RecorderNode
    from storefuse_tools.paths import ros_env
    os.environ.update(ros_env())
    args = ["storefuse-record", "--ros-args", "-p", f"out:={out}", "-p", f"store:={store}",
            "-p", f"compression:={compression}", "-p", f"split_mb:={float(split_mb)}",
            "-p", f"split_s:={float(split_s)}"]
    if topics:
        args += ["-p", "topics:=[" + ",".join(topics) + "]"]
    rclpy.init(args=args)
    err = Console(stderr=True)
    node = None
    try:
        node = RecorderNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        start = time.monotonic()
        live = Live(console=err, transient=False, auto_refresh=False) if progress else nullcontext()
        with live:
            shown = 0.0
            try:
                while duration_s is None or time.monotonic() - start < duration_s:
                    executor.spin_once(timeout_sec=0.05)
                    now = time.monotonic()
                    if progress and now - shown >= 0.5:
                        live.update(progress_table(node.stats, node.bag, now - start, now), refresh=True)
                        shown = now
            finally:
                if progress:       # the last state stays on screen
                    now = time.monotonic()
                    live.update(progress_table(node.stats, node.bag, now - start, now), refresh=True)
        if progress:
            err.print()
    except STOPPED as exc:
        if not clean_stop(exc):
            raise
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    if node is None:
        return 1
    summary = node.stats.summary() | {"bag": str(out), "files": [f.name for f in node.bag.files]}
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(f"{out}: {summary['messages']:,} messages, {summary['bytes'] / 1e6:.1f} MB in "
              f"{len(summary['files'])} file(s), {summary['dropped']} dropped")
    return 0
