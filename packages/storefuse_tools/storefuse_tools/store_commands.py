"""Store-description commands: import the AiFi layout, generate the grocery store, regenerate URDFs.

Kept out of cli.py so the store tooling grows without touching the contract commands; cli.py calls
register(app). Each command writes what a store folder holds (layout.yaml, calibration.yaml,
<store>.urdf) and launch/<store>.rviz, all generated from the layout so they can be checked in.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import List, Optional

import typer

CAL_HEADER = "# Per-plate load-cell calibration of the {store} scale boards (factory constants; " \
             "storefuse calibrate rewrites it).\n"


def checkout_root() -> Path:
    """The source checkout (the folder with urdf_store/ and launch/): from the cwd up, else this file's."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            if (parent / "urdf_store").is_dir() and (parent / "launch").is_dir():
                return parent
    raise FileNotFoundError("no storefuse checkout (a folder with urdf_store/ and launch/) found")


def write_store(out: Path, layout_text: str) -> tuple[object, list[Path]]:
    """Write a generated store folder: layout.yaml, calibration.yaml (factory constants seeded by the
    store name, so regenerating is byte-identical) and the URDF."""
    from storefuse_core.calibration import factory_calibration
    from storefuse_core.layout import parse_store
    from storefuse_core.urdf import store_urdf
    out.mkdir(parents=True, exist_ok=True)
    store = parse_store(layout_text, out / "layout.yaml")
    cal = factory_calibration(sorted(store.plates), seed=zlib.crc32(store.name.encode()))
    files = {out / "layout.yaml": layout_text,
             out / "calibration.yaml": CAL_HEADER.format(store=store.name) + cal.to_yaml(),
             out / f"{store.name}.urdf": store_urdf(store)}
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return store, list(files)


def write_views(root: Path, stores: list[str]) -> list[Path]:
    """urdf_store/<store>/<store>.urdf and launch/<store>.rviz for each store, from its layout."""
    from storefuse_core.layout import load_store
    from storefuse_core.urdf import rviz_config, store_urdf
    written = []
    for name in stores:
        store = load_store(root / "urdf_store" / name / "layout.yaml")
        if store.name != name:
            raise ValueError(f"urdf_store/{name}/layout.yaml says store: {store.name}")
        urdf, rviz = root / "urdf_store" / name / f"{name}.urdf", root / "launch" / f"{name}.rviz"
        urdf.write_text(store_urdf(store), encoding="utf-8")
        rviz.write_text(rviz_config(store), encoding="utf-8")
        written += [urdf, rviz]
    return written


def _summary(store) -> str:
    placed = sum(1 for p in store.products.values() if p.plates)
    return (f"{len(store.gondolas)} gondolas, {len(store.plates)} plates, {len(store.products)} products "
            f"({placed} placed), {len(store.cameras)} cameras, {len(store.gates)} gates")


def register(app: typer.Typer) -> None:
    from storefuse_core.errors import StorefuseError

    def fail(message: str) -> None:
        typer.echo(f"storefuse: {message}", err=True)
        raise typer.Exit(2)

    @app.command("import-aifi-layout")
    def import_aifi_layout(csv_path: Path = typer.Argument(..., metavar="CSV", help="the AiFi products.csv"),
                           out: Optional[Path] = typer.Option(None, "--out", help="store folder "
                                                              "(default: urdf_store/aifi of the checkout)")):
        """Build the aifi store (layout, calibration, URDF) from the AiFi catalogue CSV (never copied)."""
        from storefuse_core.aifi import layout_from_products_csv
        try:
            store, files = write_store(out or checkout_root() / "urdf_store" / "aifi",
                                       layout_from_products_csv(csv_path))
        except StorefuseError as exc:
            fail(str(exc))
        typer.echo(f"aifi: {_summary(store)} -> {', '.join(str(f) for f in files)}")

    @app.command("generate-grocery")
    def generate_grocery(out: Optional[Path] = typer.Option(None, "--out", help="store folder "
                                                            "(default: urdf_store/grocery of the checkout)")):
        """Generate the large grocery store (deterministic): layout, calibration, URDF."""
        from storefuse_core.grocery import generate_layout
        store, files = write_store(out or checkout_root() / "urdf_store" / "grocery", generate_layout())
        typer.echo(f"grocery: {_summary(store)} -> {', '.join(str(f) for f in files)}")

    @app.command("urdf")
    def urdf(stores: Optional[List[str]] = typer.Argument(None, metavar="[STORE]...",
                                                          help="stores to regenerate (default: all)")):
        """Regenerate urdf_store/<store>/<store>.urdf and launch/<store>.rviz from each layout."""
        root = checkout_root()
        names = stores or sorted(p.parent.name for p in (root / "urdf_store").glob("*/layout.yaml"))
        missing = [n for n in names if not (root / "urdf_store" / n / "layout.yaml").is_file()]
        if missing:
            fail(f"no urdf_store/{missing[0]}/layout.yaml under {root}")
        try:
            for path in write_views(root, names):
                typer.echo(f"wrote {path.relative_to(root)}")
        except (StorefuseError, ValueError) as exc:
            fail(str(exc))
