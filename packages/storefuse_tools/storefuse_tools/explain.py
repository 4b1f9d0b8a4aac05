"""`storefuse explain BAG --session ID`: the operator's answer to "why was I charged for this?".

Replays the bag (storefuse_core.explain) and prints, for each line of the session's final receipt,
the shelf change(s) behind it, the scale's product candidates, every session's share of the blame
and the weight the plates measured; --png draws it, --json ends with one JSON object. Without
--session it lists the bag's sessions. cli.py calls register(app).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _table(title: str):
    from rich.table import Table
    return Table(title=title, title_justify="left", show_lines=False)


def print_sessions(rows: list[dict]) -> None:
    from storefuse_tools.show import console
    table = _table("sessions in this bag")
    for col in ("session", "entered (UTC)", "gate", "status", "lines", "total"):
        table.add_column(col, justify="right" if col in ("lines", "total") else "left", overflow="fold")
    for s in rows:
        table.add_row(s["session_id"] + (" (staff)" if s["staff"] else ""), s["entry"], s["gate_id"], s["status"],
                      str(s["lines"]), f"{s['total']:.2f}")
    console.print(table)


def _event_lines(e: dict) -> list[str]:
    """One shelf change as indented lines: read top to bottom, they wrap in any terminal width."""
    from rich.markup import escape

    from storefuse_core.explain import seen_by_cameras
    tr = e.get("trace") or {}
    measured = tr.get("measured_delta_g")
    out = [f"  [bold]{e['kind']}[/] {e['event_id']} on {e['shelf_id']} (plates {', '.join(e['plate_ids'])})",
           f"    started {e['start']}, settled {e['settled']} UTC; delta {e['delta_grams']:+.1f} g "
           f"(noise sd {e['noise_sd']:.2f} g)" + (f"; weight trace {measured:+.1f} g" if measured is not None else "")]
    cands = [f"{c['probability']:.3f} {c['qty']}x {escape(c['name'])}" for c in e["candidates"][:3]]
    rest = 1.0 - e["candidates_total"]
    if rest > 0.0005:
        cands.append(f"{rest:.3f} other / unexplained")
    out.append("    product (scale): " + (" | ".join(cands) or "no candidate"))
    for v in e.get("views", []):       # the look-alike tie-breaker (storefuse_core/product_views.py)
        top = " | ".join(f"{t['probability']:.3f} {escape(t['name'])}" for t in v["top"])
        arm = f", the arm of the person at ({v['body'][0]:.2f}, {v['body'][1]:.2f})" if v.get("body") else ""
        out.append(f"    seen in the hand by {v['camera_id']} at {v['at']} ({v['pixels']:.0f} px{arm}): {top}")
    if e.get("seen_candidates"):
        seen = " | ".join(f"{c['probability']:.3f} {c['qty']}x {escape(c['name'])}" for c in e["seen_candidates"][:3])
        out.append(f"    product (scale x camera): {seen}")
    if e.get("chosen"):
        out.append(f"    decided: {e['chosen']['qty']:+d} x {escape(e['chosen']['name'])} "
                   f"(product p {e['chosen']['probability']:.3f}, event confidence {e['confidence']:.3f})")
    att = e["attribution"]
    if att is None:
        out.append("    who: nobody was inside")
        return out
    out.append(f"    who: {att['method']}")
    for p in att["sessions"]:
        seen = seen_by_cameras(p)
        out.append(f"      {'>' if p['session_id'] == att['payer'] else ' '} {p['probability']:.3f} {p['session_id']}"
                   + (f" ({seen})" if seen else ""))
    if not att["consistent"]:
        out.append(f"    [red]the ledger says {e['session_id']} at {att['recorded_probability']}[/]")
    carts = att.get("carts")
    if carts:           # the smart carts' word amended this line (storefuse_core/cart_shopper.py)
        for c in carts["carts"]:
            owners = ", ".join(f"{k} {v:.2f}" for k, v in c["owners"].items()) or "nobody yet"
            seen = [f"scale {c['weight'][1]:+.1f} g" if c["weight"] else "",
                    f"scan {c['scan'][1]}" if c["scan"] else ""]
            shown = ", ".join(x for x in seen if x) or "nothing"
            out.append(f"    cart {c['cart_id']} (pushed by {owners}): {shown}")
        out.append(f"    with the carts: {carts['payer']} at {carts['probability']:.3f}")
    return out


def _print_events(title: str, events: list[dict]) -> None:
    from storefuse_tools.show import console
    console.print(title)
    for e in events:
        console.print("\n".join(_event_lines(e)))


def print_explanation(x: dict) -> None:
    from rich.markup import escape

    from storefuse_tools.show import console, print_receipts
    s = x["session"]
    console.print(f"[bold]session {s['session_id']}[/] in {x['bag']} ({x['store']}): entered {s.get('entry', '?')} "
                  f"at {s.get('entry_gate', '?')}, "
                  + (f"left {s['exit']} at {s['exit_gate']}" if s.get("exit_gate") else
                     f"still inside when the bag ended (closed {s.get('exit', '?')}, {s.get('close_reason', '')})")
                  + ("" if x["cameras"] else "; no cameras in this bag"))
    print_receipts([x["receipt"]])
    for k, ln in enumerate(x["lines"], start=1):
        _print_events(f"[bold]line {k}: {ln['qty']} x {escape(ln['name'])}[/] ({ln['sku']}) at {ln['unit_price']:.2f}, "
                      f"confidence {ln['confidence']:.3f}", ln["events"])
    for ln in x["cancelled"]:
        _print_events(f"[bold]not billed: {escape(ln['name'])}[/] ({ln['sku']}), taken and put back", ln["events"])
    if x["other_events"]:
        _print_events("[bold]other changes attributed to this session (not billed)[/]", x["other_events"])
    if x["might_have_had"]:
        _print_events(f"[bold]changes billed to another session that this one might have made[/] (probability "
                      f"that none was this session's: {x['unbilled_probability']:.3f})", x["might_have_had"])
    for h in x.get("hand_overs", []):
        seen = "; ".join(f"seen by {v['camera_id']} at {v['at']} ({v['pixels']:.0f} px): "
                         + " | ".join(f"{t['probability']:.3f} {escape(t['name'])}" for t in v["top"])
                         for v in h["views"])
        console.print(f"[bold]handed over:[/] {h['qty']} x {escape(h['name'])} from {h['from']} to {h['to']} "
                      f"(probability {h['confidence']:.3f}); {seen}")
    for f in x.get("review_flags", []):
        console.print(f"[bold]review:[/] {_flag_text(f, x['session']['session_id'])}")


def _flag_text(f: dict, sid: str) -> str:
    from storefuse_core.explain import clock
    if f["kind"] == "silent_plate":
        return (f"{'a shopper the cameras could not name' if f.get('unnamed_track') else 'the shopper'} stood at "
                f"{f['plate']} from {clock(f['start_ns'])} to {clock(f['end_ns'])}; that plate has read the very same "
                f"weight since {clock(f['silent_since_ns'])} (a dead load cell?) and nothing on its shelf changed, "
                "so an item taken there would be on no scale")
    other = f["other"] if f["other"] != sid else f["session_id"]
    if f["kind"] == "encounter":
        return f"stayed beside {other} at {f['at']}: an item may have changed hands"
    return f"met {other}; at {f['at']} the cameras could not tell which shopper was which"


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(bag: Path = typer.Argument(..., help="a rosbag2 folder (a recorded or simulated run)"),
                session: Optional[str] = typer.Option(None, "--session", help="session id or a unique prefix; "
                                                      "without it: list the sessions"),
                png: Optional[Path] = typer.Option(None, "--png", help="also draw the evidence to this PNG file"),
                as_json: bool = typer.Option(False, "--json", help="last line: the explanation as one JSON object"),
                store: Optional[str] = typer.Option(None, help="store, when the bag does not say"),
                window_s: float = typer.Option(5.0, "--window-s", help="seconds of weights/tracks around a change")):
        """Why a session was charged for each line: shelf changes, weights, candidates, attribution."""
        from storefuse_core.errors import StorefuseError
        from storefuse_core.explain import UnknownSession, explain_session, gather, sessions, write_png
        try:
            evidence = gather(bag, store)
            if session is None:
                rows = sessions(evidence)
                if as_json:
                    typer.echo(json.dumps({"bag": str(bag), "sessions": rows}, sort_keys=True))
                else:
                    print_sessions(rows)
                return
            x = explain_session(evidence, session, window_s)
        except UnknownSession as exc:
            typer.echo(f"storefuse: explain: {exc}", err=True)
            raise typer.Exit(2) from None
        except (StorefuseError, ValueError, OSError) as exc:
            typer.echo(f"storefuse: explain: {exc}", err=True)
            raise typer.Exit(2) from None
        if png is not None:
            x["png"] = str(write_png(x, evidence.store, png))
        if as_json:
            typer.echo(json.dumps(x, sort_keys=True))
        else:
            print_explanation(x)
            if png is not None:
                typer.echo(f"evidence drawn to {png}")
