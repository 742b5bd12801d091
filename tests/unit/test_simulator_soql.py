"""The SOQL subset: what it selects, and the exact errors for what Salesforce would refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.testing.simulator import soql

SCHEMA = {
    "EventLogFile": {
        f.lower(): f for f in ("Id", "EventType", "CreatedDate", "Interval", "Sequence", "LogDate")
    },
    "SetupAuditTrail": {f.lower(): f for f in ("Id", "Action", "CreatedDate", "CreatedBy.Username")},
}
FILES = [
    {
        "Id": "a",
        "EventType": "Login",
        "CreatedDate": "2026-11-01T05:00:00.000+0000",
        "Interval": "Hourly",
        "Sequence": 1,
    },
    {
        "Id": "b",
        "EventType": "API",
        "CreatedDate": "2026-11-01T06:00:00.000+0000",
        "Interval": "Hourly",
        "Sequence": 2,
    },
    {
        "Id": "c",
        "EventType": "Login",
        "CreatedDate": "2026-11-02T04:00:00.000+0000",
        "Interval": "Daily",
        "Sequence": 0,
    },
    {"Id": "d", "EventType": "URI", "CreatedDate": None, "Interval": "Daily", "Sequence": 0},
]


def ids(text: str) -> list[str]:
    return [r["Id"] for r in soql.execute(soql.parse(text, SCHEMA), FILES)]


def test_where_compares_datetimes_and_orders() -> None:
    q = "SELECT Id FROM EventLogFile WHERE CreatedDate > 2026-11-01T05:30:00Z ORDER BY CreatedDate DESC"
    assert ids(q) == ["c", "b"]


def test_datetime_literals_with_offsets_are_instants() -> None:
    assert ids("SELECT Id FROM EventLogFile WHERE CreatedDate = 2026-11-01T07:00:00+01:00") == ["b"]


def test_in_and_or_with_parentheses() -> None:
    q = "SELECT Id FROM EventLogFile WHERE (EventType IN ('api', 'URI') OR Sequence >= 1) AND Interval != 'Daily'"
    assert ids(q) == ["a", "b"]


def test_not_in_and_like() -> None:
    assert ids("SELECT Id FROM EventLogFile WHERE EventType NOT IN ('Login')") == ["b", "d"]
    assert ids("SELECT Id FROM eventlogfile WHERE EventType LIKE 'Lo%'") == ["a", "c"]


def test_string_equality_is_case_insensitive_like_soql() -> None:
    assert ids("SELECT Id FROM EventLogFile WHERE eventtype = 'LOGIN'") == ["a", "c"]


def test_nulls_sort_first_ascending_and_last_descending() -> None:
    assert ids("SELECT Id FROM EventLogFile ORDER BY CreatedDate")[0] == "d"
    assert ids("SELECT Id FROM EventLogFile ORDER BY CreatedDate DESC")[-1] == "d"
    assert ids("SELECT Id FROM EventLogFile ORDER BY CreatedDate ASC NULLS LAST")[-1] == "d"


def test_limit_and_offset() -> None:
    assert ids("SELECT Id FROM EventLogFile ORDER BY Id LIMIT 2 OFFSET 1") == ["b", "c"]


def test_relationship_fields_and_count_parse() -> None:
    query = soql.parse("SELECT Id, CreatedBy.Username FROM SetupAuditTrail", SCHEMA)
    assert query.fields == [("Id",), ("CreatedBy", "Username")]
    assert soql.parse("SELECT COUNT() FROM EventLogFile", SCHEMA).count_only


def test_unknown_field_is_invalid_field_with_salesforce_text() -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse("SELECT Id, Intervall FROM EventLogFile", SCHEMA)
    assert err.value.error_code == "INVALID_FIELD"
    assert err.value.message.startswith(
        "\nSELECT Id, Intervall FROM EventLogFile\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Intervall' on entity 'EventLogFile'."
    )


def test_unknown_object_is_invalid_type() -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse("SELECT Id FROM Account", SCHEMA)
    assert err.value.error_code == "INVALID_TYPE"
    assert "sObject type 'Account' is not supported." in err.value.message


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id FROM EventLogFile WHERE EventType = 'a' AND Sequence = 1 OR Sequence = 2",
        "SELECT Id FROM EventLogFile WHERE",
        "SELECT FROM EventLogFile",
        "SELECT Id FROM EventLogFile LIMIT x",
        "SELECT Id EventLogFile",
        "SELECT Id FROM EventLogFile GROUP BY EventType",
        "",
    ],
)
def test_malformed_queries_are_refused(text: str) -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse(text, SCHEMA)
    assert err.value.error_code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in err.value.message


def test_escaped_quotes_in_string_literals() -> None:
    rows = [{"Id": "x", "EventType": "O'Brien"}]
    query = soql.parse(r"SELECT Id FROM EventLogFile WHERE EventType = 'O\'Brien'", SCHEMA)
    assert soql.execute(query, rows) == rows


NUM_SCHEMA = {"Obj": {"id": "Id", "n": "N", "s": "S"}}
_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> tuple[str, Any]:
    """A random WHERE condition as SOQL text and as a Python predicate over one record."""
    if depth >= 2 or draw(st.booleans()):
        if draw(st.booleans()):
            op, value = draw(st.sampled_from(sorted(_OPS))), draw(st.integers(-3, 3))
            return f"N {op} {value}", lambda r, op=op, value=value: _OPS[op](r["N"], value)
        values = draw(st.lists(st.sampled_from(["a", "B", "c"]), min_size=1, max_size=3))
        text = ", ".join(f"'{v}'" for v in values)
        wanted = {v.lower() for v in values}
        return f"S IN ({text})", lambda r, wanted=wanted: r["S"].lower() in wanted
    joiner = draw(st.sampled_from(["AND", "OR"]))
    parts = draw(st.lists(conditions(depth + 1), min_size=2, max_size=3))
    text = f" {joiner} ".join(f"({t})" for t, _ in parts)
    preds = [p for _, p in parts]
    if joiner == "AND":
        return text, lambda r, preds=preds: all(p(r) for p in preds)
    return text, lambda r, preds=preds: any(p(r) for p in preds)


@settings(deadline=None)  # a shared 2-core machine: no per-example deadline
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["a", "b", "C", "d"])), max_size=12),
    conditions(),
)
def test_where_agrees_with_a_python_reference(
    rows: list[tuple[int, str]], condition: tuple[str, Any]
) -> None:
    records = [{"Id": str(i), "N": n, "S": s} for i, (n, s) in enumerate(rows)]
    text, predicate = condition
    query = soql.parse(f"SELECT Id FROM Obj WHERE {text} ORDER BY N DESC, Id", NUM_SCHEMA)
    got = soql.execute(query, records)
    want = sorted((r for r in records if predicate(r)), key=lambda r: (-r["N"], r["Id"]))
    assert got == want


def test_relative_date_literals() -> None:
    now = datetime.now(UTC)
    rows = [
        {"Id": "now", "CreatedDate": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")},
        {"Id": "old", "CreatedDate": (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")},
        {"Id": "none", "CreatedDate": None},
    ]

    def run(where: str) -> list[str]:
        query = soql.parse(f"SELECT Id FROM EventLogFile WHERE {where}", SCHEMA)
        return [r["Id"] for r in soql.execute(query, rows)]

    assert run("CreatedDate = TODAY") == ["now"]
    assert run("CreatedDate = LAST_N_DAYS:3") == ["now"]
    assert run("CreatedDate < LAST_N_DAYS:3") == ["old"]
    assert run("CreatedDate = LAST_N_DAYS:30") == ["now", "old"]
    assert run("CreatedDate > YESTERDAY") == ["now"]
    assert run("CreatedDate != TODAY") == ["old", "none"]
