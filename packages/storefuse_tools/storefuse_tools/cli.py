"""The `storefuse` command line (DESIGN.md contract: launch, sim, replay, eval; plus demo, record)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="storefuse: sensor fusion for checkout-free stores (ROS 2).")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"storefuse: {message}", err=True)
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def launch(ctx: typer.Context, file: Path = typer.Argument(..., help="a ROS 2 launch YAML file")):
    """Start a launch file's nodes, each as its own process (name:=value sets launch arguments)."""
    from storefuse_tools.launch_runner import LaunchError, run_launch
    from storefuse_tools.paths import ros_env
    os.environ.update(ros_env())
    try:
        raise typer.Exit(run_launch(file, list(ctx.args)))
    except LaunchError as exc:
        _fail(str(exc))


@app.command()
def sim(scenario: Path, out: Path = typer.Option(..., "--out", help="folder for bag/ and ground_truth.json"),
        seed: Optional[int] = typer.Option(None, help="override the scenario's seed"),
        frames: bool = typer.Option(False, "--frames", help="also record rendered camera frames (JPEG, 2 Hz)")):
    """Run a scenario offline (no ROS graph): DIR/bag/ holds the raw sensor topics."""
    from storefuse_core.errors import StorefuseError
    from storefuse_core.simulation.offline import run_offline
    from storefuse_core.simulation.scenario import load_scenario
    try:
        gt = run_offline(load_scenario(scenario, seed), out, frames=frames)
    except StorefuseError as exc:
        _fail(str(exc))
    typer.echo(f"{out}/bag: {gt['duration_s']:.1f} s of {gt['store']}, {len(gt['visits'])} visits; "
               f"ground truth in {out}/ground_truth.json")


@app.command()
def replay(bag: Path, as_json: bool = typer.Option(False, "--json", help="last line: JSON list of final receipts"),
           store: Optional[str] = typer.Option(None, help="store, when the bag does not say")):
    """Run the fusion pipeline offline on a bag's raw sensor topics, as fast as the CPU allows."""
    from storefuse_core.errors import StorefuseError
    from storefuse_core.replay import replay_bag
    try:
        result = replay_bag(bag, store)
    except (StorefuseError, ValueError) as exc:
        _fail(str(exc))
    finals = result.finals_json()
    if as_json:
        typer.echo(json.dumps(finals, sort_keys=True))
    else:
        from storefuse_tools.show import print_receipts
        print_receipts(finals)


@app.command()
def demo(scenario: Optional[Path] = typer.Option(None, help="scenario YAML (default: the two-shopper minimart)"),
         out: Path = typer.Option(Path("out/demo"), help="run folder: bag, ledger, logs, ground truth"),
         rate: float = typer.Option(2.0, help="simulated seconds per wall second"),
         quiet: bool = typer.Option(False, help="do not echo the nodes' output")):
    """The whole stack, live, on a simulated store; prints the receipts and checks them."""
    from storefuse_core.evaluation import match
    from storefuse_core.replay import replay_bag
    from storefuse_tools.live import run_live
    from storefuse_tools.paths import bringup_share
    from storefuse_tools.show import console, print_receipts
    scenario = scenario or bringup_share() / "scenarios" / "minimart_two_shoppers.yaml"
    console.print(f"[bold]storefuse demo[/]: {scenario.name} live at {rate}x, run folder {out}")
    echo = None if quiet else (lambda line: console.print(line, markup=False, highlight=False))
    result = run_live(scenario, out, rate=rate, echo=echo)
    if result.timed_out or not result.ground_truth:
        _fail(f"the live run did not finish (exit codes {result.exited}); see {out}/launch.log", 1)
    print_receipts(result.finals)
    pairs, _ = match(result.ground_truth, result.finals)
    good = sum(1 for visit, r in pairs if r is not None and _same_lines(visit["lines"], r["lines"]))
    console.print(f"receipts match ground truth: {good}/{len(pairs)}")
    offline = replay_bag(result.bag).finals_json()
    same = offline == result.finals
    console.print(f"offline replay of {result.bag}: {'identical receipts' if same else 'DIFFERENT receipts'}")
    raise typer.Exit(0 if good == len(pairs) and same else 1)


@app.command(name="import-aifi")
def import_aifi(dataset: Path = typer.Argument(..., help="the AiFi AutoCheckout test folder (plates/, products.csv)"),
                out: Path = typer.Option(..., "--out", help="bag folder to create"),
                videos: str = typer.Option("none", "--videos",
                                           help="also videos/cam{1,3,5,7}.mp4: detections (the camera node's detector "
                                                "run here), images (JPEG CompressedImage) or none"),
                image_every: int = typer.Option(1, "--image-every", help="with --videos images: every Nth frame"),
                jpeg_quality: int = typer.Option(80, "--jpeg-quality", help="with --videos images")):
    """Real AiFi AutoCheckout shelf data (and, on request, its camera videos) to a bag on the `aifi` store."""
    from storefuse_core.aifi import plates_to_bag
    from storefuse_core.errors import StorefuseError
    try:
        info = plates_to_bag(dataset, out, videos=videos, image_every=image_every, jpeg_quality=jpeg_quality)
    except StorefuseError as exc:
        _fail(str(exc))
    typer.echo(f"{out}: {info['plates']} plates, {info['samples']} samples each "
               f"({(info['end_ns'] - info['start_ns']) / 1e9:.1f} s), {info['blocks']} PlateWeights blocks")
    for cid, n in sorted(info["frames"].items()):
        extra = f", {info['detections'][cid]} detections" if videos == "detections" else ""
        typer.echo(f"{cid}: {n} {'frames' if videos == 'detections' else 'images'}{extra}")


@app.command(name="eval")
def evaluate(scenario: Path = typer.Option(..., "--scenario"), seeds: int = typer.Option(1, "--seeds"),
             live: bool = typer.Option(False, "--live", help="separate processes over DDS, in real time"),
             record: Optional[Path] = typer.Option(None, "--record", help="with --live: keep the bag here"),
             rate: float = typer.Option(1.0, help="with --live: simulated seconds per wall second")):
    """Simulate, run and score; the last line of stdout is one JSON object of metrics."""
    from storefuse_core.evaluation import live_latencies, pool, tracking_metrics
    from storefuse_core.replay import replay_bag
    from storefuse_core.simulation.offline import run_offline
    from storefuse_core.simulation.scenario import load_scenario
    runs, tracking = [], []
    base = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="storefuse-eval-") as tmp:
        for i in range(seeds):
            seed = base.seed + i
            if live:
                from storefuse_tools.live import run_live
                run_dir = record if (record and seeds == 1) else Path(tmp) / f"live-{seed}"
                if seed != base.seed:
                    _fail("--live evaluates one seed at a time (the scenario's own)")
                result = run_live(scenario, run_dir, rate=rate)
                if result.timed_out:
                    _fail(f"live run timed out; see {run_dir}/launch.log", 1)
                runs.append((result.ground_truth, result.finals))
                latencies = live_latencies(result.bag)
            else:
                out = Path(tmp) / f"seed-{seed}"
                gt = run_offline(load_scenario(scenario, seed), out)
                result = replay_bag(out / "bag")
                runs.append((gt, result.finals_json()))
                tracking.append(tracking_metrics(gt, result.track_frames))
    metrics = pool(runs, tracking)
    if live:
        metrics.update(latencies)
    typer.echo(json.dumps(metrics, sort_keys=True))


@app.command()
def record(out: Path = typer.Option(..., "--out", help="bag folder to create"),
           topics: Optional[List[str]] = typer.Option(None, "--topic", help="topic to record (repeatable)"),
           store: str = typer.Option("minimart"),
           compression: str = typer.Option("zstd", help="MCAP chunk compression: zstd or none"),
           split_mb: float = typer.Option(0.0, "--split-mb", help="start a new file past this many MB (0: never)"),
           split_s: float = typer.Option(0.0, "--split-s", help="start a new file every this many seconds"),
           duration: Optional[float] = typer.Option(None, help="stop after this many seconds (default: Ctrl-C)"),
           progress: bool = typer.Option(True, help="live progress table on stderr"),
           as_json: bool = typer.Option(False, "--json", help="last line: JSON summary (counts, dropped, files)")):
    """Record storefuse topics from the running graph into a rosbag2 folder (Ctrl-C to stop)."""
    from storefuse_tools.record import record as run_record
    if compression not in ("zstd", "none"):
        _fail(f"--compression must be zstd or none, not {compression!r}")
    if out.exists():
        _fail(f"{out} already exists; rosbag2 never overwrites a bag")
    raise typer.Exit(run_record(out, topics, store, compression, split_mb, split_s, duration, progress, as_json))


def _same_lines(a, b) -> bool:
    def norm(lines):
        return sorted((ln["sku"], int(ln["qty"])) for ln in lines if int(ln["qty"]) > 0)
    return norm(a) == norm(b)


from storefuse_tools.store_commands import register  # noqa: E402, I001
register(app)
from storefuse_tools.calibrate import register as register_calibrate  # noqa: E402, I001
register_calibrate(app)
from storefuse_tools.play import register as register_play  # noqa: E402, I001
register_play(app)
from storefuse_tools.check_camera import register as register_check_camera  # noqa: E402, I001
register_check_camera(app)
from storefuse_tools.explain import register as register_explain  # noqa: E402, I001
register_explain(app)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
