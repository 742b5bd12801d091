"""The compiled fast path and the reference table interpreter produce the same documents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from normalize_fixtures import load, record_files
from test_normalize_properties import KINDS, payloads

from forwarder.normalize.engine import FieldError, NotJson, build
from forwarder.normalize.families import family_for
from forwarder.records import Record

RECEIVED = datetime(2026, 11, 26, tzinfo=UTC)


def _both(record: Record) -> tuple[Any, Any]:
    family, provider = family_for(record.source, record.kind)
    assert family.apply is not None
    results = []
    for variant in (family, replace(family, apply=None)):
        try:
            results.append(
                build(
                    variant, record.kind, provider, record.payload, raw=True, ingested=None, received=RECEIVED
                )
            )
        except (FieldError, NotJson) as exc:
            results.append((type(exc).__name__, str(exc)))
    return results[0], results[1]


def test_compiled_and_interpreted_agree_on_every_fixture() -> None:
    for relative in record_files():
        for record in load(relative)[:50]:
            compiled, interpreted = _both(record)
            assert compiled == interpreted, relative


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), payload=payloads)
def test_compiled_and_interpreted_agree_on_random_payloads(
    kind: tuple[str, str], payload: dict[str, Any]
) -> None:
    compiled, interpreted = _both(Record(kind[0], kind[1], payload))
    if isinstance(compiled, tuple) and isinstance(interpreted, tuple):
        # both reject; the field named may differ when several are bad (different visiting order)
        assert compiled[0] == interpreted[0]
        return
    assert compiled == interpreted
