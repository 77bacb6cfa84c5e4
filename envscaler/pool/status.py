"""What the pool shows while it runs: warm-up progress, then a compact live table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def status_table(stats: dict[str, Any], address: str) -> Table:
    envs = stats["envs"]
    total = {k: sum(e[k] for e in envs.values()) for k in ("idle", "leased", "starting", "failed")}
    title = (f"pool on {address}: {stats['containers']}/{stats['size']} containers, {total['idle']} ready, "
             f"{total['leased']} leased, {total['starting']} starting · {stats['acquired']} leases, "
             f"{stats['replaced']} replaced, {stats['expired']} expired")
    table = Table(title=title, title_justify="left")
    failing = any(c.get("failing") for c in envs.values())
    for column in ("env", "ready", "leased", "starting", "failed", *(["failing"] if failing else [])):
        table.add_column(column, justify="left" if column in ("env", "failing") else "right")
    for env, c in envs.items():
        failed = f"[bold red]{c['failed']}" if c["failed"] else "0"
        cause = [f"[bold red]{c['failing']}"] if failing else []
        table.add_row(env, f"[green]{c['idle']}", str(c["leased"]), str(c["starting"]), failed, *cause)
    return table


def status_line(stats: dict[str, Any]) -> str:
    envs = stats["envs"].values()
    parts = {k: sum(e[k] for e in envs) for k in ("idle", "leased", "starting", "failed")}
    return (f"{stats['containers']}/{stats['size']} containers: {parts['idle']} ready, {parts['leased']} leased, "
            f"{parts['starting']} starting, {parts['failed']} failed starts; {stats['acquired']} leases, "
            f"{stats['replaced']} replaced"
            + "".join(f"; failing: {e['failing']}" for e in stats["envs"].values() if e.get("failing")))

