"""``sf-forwarder dead-letters list | replay | purge``: the way back for what a sink refused or normalisation
rejected, once the cause is fixed, and the way to clear what an operator has dealt with.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from forwarder.journal import Journal, JournalFullError, LetterFilter, StoredDeadLetter
from forwarder.records import Lane, Record
from forwarder.settings import parse_duration

if TYPE_CHECKING:  # the parser is built for every command: the pipeline is imported only when used
    from forwarder.config import Config
    from forwarder.events import EventDoc
    from forwarder.normalize import RawMode

EXIT_USAGE = 2
#: The consumer name of records that failed normalisation (``forwarder.ingest.INGEST_CONSUMER``).
INGEST_CONSUMER = "ingest"
#: Ingest letters normalised and settled per journal transaction: each chunk is all-or-nothing, so a crash
#: leaves every letter either replayed (event appended, letter deleted) or untouched.
CHUNK = 500
#: Reasons longer than this are cut in the text listing (``--json`` has them whole).
REASON_WIDTH = 160


class UsageError(Exception):
    """A request that cannot be carried out as given: one line on stderr, exit 2."""


def add_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """The ``dead-letters`` subcommand and its actions (``commands`` is the top-level subparsers)."""
    top = commands.add_parser("dead-letters", help="List, replay or purge dead letters.")
    actions = top.add_subparsers(dest="dl_action", metavar="ACTION", parser_class=parser_class)
    show = actions.add_parser("list", help="Stored dead letters, newest first, with a count per consumer.")
    show.add_argument("--consumer", help="Only this consumer (a sink name, or ingest).")
    show.add_argument("--reason", help="Only letters whose reason contains this text (any case).")
    show.add_argument("--limit", type=_positive, default=50, help="At most this many (default 50).")
    show.add_argument("--json", action="store_true", help="JSON with the payloads.")
    replay = actions.add_parser("replay", help="Send dead letters again (sink letters to that sink only).")
    replay.add_argument("--consumer", required=True, help="A sink name, or ingest (normalised again).")
    _add_selection(replay, consumer=False)
    replay.add_argument("--dry-run", action="store_true", help="Say what would happen; change nothing.")
    purge = actions.add_parser("purge", help="Delete dead letters.")
    _add_selection(purge, consumer=True)
    purge.add_argument("--older-than", type=_duration, help="Only letters older than this (e.g. 7d, 12h).")
    purge.add_argument("--yes", action="store_true", help="Do not ask (required without a terminal).")
    for action in (show, replay, purge):
        action.add_argument("-c", "--config", required=True, help="YAML config file.")


def _add_selection(parser: argparse.ArgumentParser, *, consumer: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--ids", type=_ids, help="Comma-separated letter ids, e.g. 1,2,3.")
    if consumer:
        group.add_argument("--consumer", help="Every letter of this consumer (a sink name, or ingest).")
    group.add_argument("--all", action="store_true", help="Every letter (of the consumer, for replay).")


def _ids(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ids, got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no ids given")
    return ids


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return int(text)


def _duration(text: str) -> timedelta:
    value = parse_duration(text)
    if not isinstance(value, timedelta):
        raise argparse.ArgumentTypeError(f"expected a duration like 7d, 12h or 30m, got {text!r}")
    return value


def run(config: Config, args: argparse.Namespace) -> int:
    """Carry out one action; the process exit code."""
    from forwarder.logging import configure

    configure("warning", config.logging.format)  # stdout is for the report; logs go to stderr
    if args.dl_action == "purge" and args.older_than is not None and args.ids is not None:
        raise UsageError("--older-than goes with --consumer or --all, not with --ids")
    if not config.state.path.exists():  # looking must not create a journal (as ``state show``)
        print(f"no journal at {config.state.path} yet: no dead letters")
        return 0 if args.dl_action == "list" else 1
    return asyncio.run(_run(config, args))


async def _run(config: Config, args: argparse.Namespace) -> int:
    from forwarder.app import open_journal

    journal = await open_journal(config)  # not exclusive: works beside a running daemon (WAL)
    try:
        if args.dl_action == "list":
            return await list_letters(journal, args)
        if args.dl_action == "replay":
            return await replay(journal, config, args)
        return await purge(journal, args)
    except JournalFullError as exc:  # ingest replay with ``when_full: block``: the chunk changed nothing
        print(f"{exc}: replay stopped; run it again once the sinks have caught up", file=sys.stderr)
        return 1
    finally:
        await journal.close()


# --- list ----------------------------------------------------------------------------------------------


async def list_letters(journal: Journal, args: argparse.Namespace) -> int:
    where = LetterFilter(consumer=args.consumer, reason=args.reason)
    letters = await journal.dead_letters(limit=args.limit, where=where)
    counts = await journal.count_dead_letters(where)
    if args.json:
        report = {"dead_letters": [_letter_json(d) for d in letters], "counts": counts}
        print(json.dumps(report, indent=2, default=str))
        return 0
    for letter in letters:
        print(_letter_line(letter))
    total = sum(counts.values())
    shown = f" (newest {len(letters)} shown)" if len(letters) < total else ""
    per = ", ".join(f"{consumer} {n}" for consumer, n in counts.items()) or "none"
    print(f"dead letters: {total}{shown}; per consumer: {per}")
    return 0


def _letter_json(letter: StoredDeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "consumer": letter.consumer,
        "created": letter.created_at.isoformat(),
        "reason": letter.reason,
        "replay_requested": letter.replay_requested,
        "payload": letter.payload,
    }


def _letter_line(letter: StoredDeadLetter) -> str:
    reason = " ".join(letter.reason.split())
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 3] + "..."
    created = letter.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    mark = "replay" if letter.replay_requested else "-"
    return f"{letter.id:>8}  {letter.consumer:<16}  {created}  {mark:<6}  {reason}"


# --- replay --------------------------------------------------------------------------------------------


async def replay(journal: Journal, config: Config, args: argparse.Namespace) -> int:
    consumer: str = args.consumer
    sinks = [sink.name for sink in config.sinks]
    if consumer != INGEST_CONSUMER and consumer not in sinks:
        known = ", ".join([*sinks, INGEST_CONSUMER])
        raise UsageError(f"no sink named {consumer!r} in the config (replay to one of: {known})")
    where = LetterFilter(consumer=consumer, ids=args.ids)
    await _check_ids(journal, where)
    if consumer == INGEST_CONSUMER:
        appended, kept = await replay_ingest(journal, where, config.normalize.raw, dry_run=args.dry_run)
        verb = "would be" if args.dry_run else "were"
        print(f"{INGEST_CONSUMER}: {appended} {verb} normalised and appended; {kept} still rejected, kept")
        return 0
    if args.dry_run:
        count = sum((await journal.count_dead_letters(where)).values())
        print(f"{consumer}: {count} dead letters would be sent again, to sink {consumer} only")
        return 0
    marked = await journal.request_replay(where)
    print(
        f"{consumer}: {marked} dead letters marked for redelivery to sink {consumer} only; a running"
        " forwarder sends them within seconds, otherwise the next `sf-forwarder run` does"
    )
    return 0


async def _check_ids(journal: Journal, where: LetterFilter) -> None:
    """Every id given must be a stored letter of the consumer: a typo must not pass silently."""
    if where.ids is None:
        return
    found = {d.id for d in await journal.dead_letters(limit=len(where.ids), where=where)}
    missing = [i for i in where.ids if i not in found]
    if missing:
        ids = ",".join(map(str, missing))
        raise UsageError(f"no dead letter {ids} of consumer {where.consumer!r} (see `dead-letters list`)")


async def replay_ingest(
    journal: Journal, where: LetterFilter, raw: RawMode, *, dry_run: bool = False
) -> tuple[int, int]:
    """Normalise ingest letters again with today's code, ``CHUNK`` letters per transaction: what normalises
    now is appended (lane by source, every sink gets it) and its letter deleted in the same transaction;
    what is still rejected stays with the new reason. Returns (appended, still rejected)."""
    appended = kept = 0
    below: int | None = None
    while True:
        chunk = await journal.dead_letters(limit=CHUNK, where=dataclasses.replace(where, below_id=below))
        if not chunk:
            return appended, kept
        below = chunk[-1].id  # paged newest first by id: letters kept are never read twice
        events, done, refused = renormalise(sorted(chunk, key=lambda d: d.id), raw)
        if not dry_run:
            await journal.settle_dead_letters(done, refused, events)
        appended, kept = appended + len(done), kept + len(refused)


def renormalise(
    letters: Sequence[StoredDeadLetter], raw: RawMode
) -> tuple[dict[Lane, list[EventDoc]], list[int], dict[int, str]]:
    """Events by lane, the ids now normalised, and the ids still rejected with their new reason."""
    from forwarder.ingest import rejected_letter
    from forwarder.normalize.batch import normalize_batch

    events: dict[Lane, list[EventDoc]] = {}
    done: list[int] = []
    refused: dict[int, str] = {}
    now = datetime.now(UTC)
    for letter in letters:
        try:
            record = record_of(letter.payload)
        except (KeyError, TypeError, ValueError) as exc:
            refused[letter.id] = f"replay: not a stored record ({type(exc).__name__}: {exc})"
            continue
        docs, rejected = normalize_batch([record], raw=raw, ingested=now)
        if rejected:
            refused[letter.id] = rejected_letter(rejected[0]).reason
            continue
        events.setdefault(lane_of(record.source), []).extend(docs)
        done.append(letter.id)
    return events, done, refused


def record_of(payload: dict[str, Any]) -> Record:
    """The record an ingest letter holds (``forwarder.ingest.rejected_letter``). Optional fields the letter
    carries (a source envelope) go back in when ``Record`` has them."""
    if not isinstance(payload["payload"], dict):
        raise TypeError("payload is not an object")
    kwargs: dict[str, Any] = {
        "source": str(payload["source"]),
        "kind": str(payload["kind"]),
        "payload": payload["payload"],
        "received_at": datetime.fromisoformat(payload["received_at"]),
    }
    optional = {f.name for f in dataclasses.fields(Record)} - {*kwargs, "fields", "from_json"}
    kwargs.update({k: v for k, v in payload.items() if k in optional and isinstance(v, dict)})
    return Record(**kwargs)


def lane_of(source: str) -> Lane:
    """The lane a source appends to (its ``lane``): EventLogFile is bulk; streams and polled objects are
    realtime."""
    from forwarder.sources.eventlogfile import EventLogFileSource

    return EventLogFileSource.lane if source == EventLogFileSource.name else Lane.REALTIME


# --- purge ---------------------------------------------------------------------------------------------


async def purge(journal: Journal, args: argparse.Namespace) -> int:
    before = None if args.older_than is None else datetime.now(UTC) - args.older_than
    where = LetterFilter(consumer=args.consumer, ids=args.ids, before=before)
    newest = await journal.dead_letters(limit=1, where=where)
    if not newest:
        print("no dead letters match: nothing purged")
        return 0
    where = dataclasses.replace(where, below_id=newest[0].id + 1)  # letters stored after the count stay
    counts = await journal.count_dead_letters(where)
    summary = (
        f"{sum(counts.values())} dead letters (" + ", ".join(f"{c} {n}" for c, n in counts.items()) + ")"
    )
    if not args.yes and not _confirmed(summary):
        return EXIT_USAGE if not sys.stdin.isatty() else 1
    deleted = await journal.delete_dead_letters(where)
    print(f"deleted {deleted} dead letters")
    return 0


def _confirmed(summary: str) -> bool:
    """Ask on a terminal; without one, refuse (a script must say ``--yes``)."""
    if not sys.stdin.isatty():
        print(f"refusing to delete {summary} without --yes: no terminal to ask on", file=sys.stderr)
        return False
    answer = input(f"delete {summary}? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("nothing purged")
    return False
