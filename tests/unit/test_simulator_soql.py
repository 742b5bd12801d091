"""The SOQL subset: what it selects, and the exact errors for what Salesforce would refuse."""

from __future__ import annotations

import pytest

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
