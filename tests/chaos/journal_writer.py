"""Crash-test helper: appends to the journal (and consumes some) forever, printing each durable step.

``python journal_writer.py PATH SEED``. Every event's ``seq`` equals the offset it must get in its lane, so
the parent can check the reopened journal exactly. A line is printed only after ``append``/``commit`` returned.
"""

from __future__ import annotations

import asyncio
import random
import sys

from forwarder.journal import DeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

SOURCES = {"streaming": Lane.REALTIME, "eventlogfile": Lane.BULK}


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    journal = await SqliteJournal.open(path, consumers=["c"], exclusive=True)
    seqs = {}
    for source in SOURCES:
        position = await journal.position(source)
        seqs[source] = position["seq"] if position else 0
    print("opened", flush=True)
    while True:
        source = rng.choice(sorted(SOURCES))
        lane, first, count = SOURCES[source], seqs[source] + 1, rng.randint(1, 300)
        docs = [
            {"event": {"id": f"{source}-{n}"}, "seq": n, "pad": "x" * rng.randint(0, 400)}
            for n in range(first, first + count)
        ]
        letters = [DeadLetter("ingest", "unparseable", {"seq": first})] if rng.random() < 0.2 else []
        await journal.append(source, lane, docs, letters, {"seq": first + count - 1})
        seqs[source] = first + count - 1
        print(f"appended {source} {seqs[source]}", flush=True)
        if rng.random() < 0.5:
            after = await journal.cursor("c", lane)
            entries = await journal.read("c", lane, after, rng.randint(1, 400))
            if entries:
                await journal.commit("c", lane, entries[-1].offset)
                print(f"committed {lane.value} {entries[-1].offset}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
