"""``sf-forwarder state show``: what the journal knows, for an operator at a terminal or a script."""

from __future__ import annotations

import json
from typing import Any

from forwarder.config import Config
from forwarder.logging import configure


async def collect(config: Config) -> dict[str, Any]:
    """Journal statistics plus the EventLogFile per-hour completeness view."""
    from forwarder.app import open_journal
    from forwarder.sources.eventlogfile import completeness

    journal = await open_journal(config)
    try:
        stats = await journal.stats()
        letters = await journal.dead_letters(limit=20)
        elf_position = await journal.position("eventlogfile")
    finally:
        await journal.close()
    stats["recent_dead_letters"] = [
        {"consumer": d.consumer, "reason": d.reason, "at": getattr(d, "created_at", None)} for d in letters
    ]
    stats["eventlogfile_completeness"] = completeness(elf_position)
    return stats


def render(stats: dict[str, Any], indent: int = 0) -> list[str]:
    """A readable, stable text form of nested statistics."""
    lines: list[str] = []
    pad = "  " * indent
    for key, value in stats.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:" + ("" if value else " (none)"))
            lines += render(value, indent + 1)
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:" + ("" if value else " (none)"))
            for item in value:
                lines.append(f"{pad}  - {json.dumps(item, default=str, sort_keys=True)}")
        else:
            lines.append(f"{pad}{key}: {value}")
    return lines


async def show(config: Config, *, as_json: bool = False) -> int:
    configure("warning", config.logging.format)  # stdout is for the report; logs go to stderr
    if not config.state.path.exists():  # looking must not create a journal (a typo would leave one behind)
        print(f"no journal at {config.state.path} yet: the forwarder has not run with this config")
        return 0
    stats = await collect(config)
    print(json.dumps(stats, indent=2, default=str) if as_json else "\n".join(render(stats)))
    return 0
