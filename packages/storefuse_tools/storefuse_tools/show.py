"""Receipts as a person reads them (rich tables)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def print_receipts(finals: list[dict]) -> None:
    if not finals:
        console.print("no final receipts")
    for r in finals:
        table = Table(title=f"receipt {r['session_id']} - {r['status']} ({r.get('status_reason', '')}), "
                            f"confidence {r['confidence']:.3f}", title_justify="left")
        table.add_column("qty", justify="right")
        table.add_column("product")
        table.add_column("sku")
        table.add_column("unit", justify="right")
        table.add_column("confidence", justify="right")
        for ln in r["lines"]:
            table.add_row(str(ln["qty"]), ln["name"], ln["sku"], f"{ln['unit_price']:.2f}", f"{ln['confidence']:.3f}")
        table.add_row("", "[bold]total[/]", "", f"[bold]{r['total']:.2f}[/]", "")
        console.print(table)
