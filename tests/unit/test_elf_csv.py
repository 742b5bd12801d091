"""The streaming EventLogFile CSV reader: any chunking gives the rows csv.reader gives on the whole file."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.salesforce import logfile
from forwarder.salesforce.logfile import RowTyper, _cut, _quoted_rows, converters, csv_rows, row_hash
from forwarder.testing.fixtures import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "elf/logstash-input-sfdc_elf"


def encode(rows: list[list[str]]) -> bytes:
    return "".join(",".join('"' + v.replace('"', '""') + '"' for v in row) + "\n" for row in rows).encode()


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        yield data[pos : pos + size]
        pos += size
        i += 1


async def parse(data: bytes, sizes: list[int]) -> list[list[str]]:
    return [row async for rows in csv_rows(chunked(data, sizes)) for row in rows]


values = st.text(alphabet=st.sampled_from('ab ,"\n\r\u00e9\u4e2d'), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(values, min_size=3, max_size=3), min_size=1, max_size=20),
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=5),
)
def test_any_chunking_parses_like_whole_file(rows: list[list[str]], sizes: list[int]) -> None:
    data = encode(rows)
    assert asyncio.run(parse(data, sizes)) == list(csv.reader(io.StringIO(data.decode())))


async def test_real_salesforce_files_parse_like_csv_reader() -> None:
    for path in sorted(FIXTURES.glob("*.csv")):
        data = path.read_bytes()
        expected = [r for r in csv.reader(io.StringIO(data.decode())) if r]
        assert [r for r in await parse(data, [97]) if r] == expected, path.name


async def test_tripled_quotes_keep_salesforce_quotes() -> None:
    data = (FIXTURES / "sample_data2.csv").read_bytes()
    rows = await parse(data, [64])
    assert rows[1][14] == '"success"'


def test_cut_keeps_a_quoted_newline_for_the_next_chunk() -> None:
    text = '"a","b"\n"c","multi\nline'
    assert _cut(text) == len('"a","b"\n')
    assert _cut('"no newline') == 0


def test_types_follow_log_file_field_types() -> None:
    header = ["EVENT_TYPE", "RUN_TIME", "CPU_TIME", "SUCCESS", "COUNTS", "RATIO"]
    convert = dict(converters("String,Number,Number,Boolean,Boolean,Number", len(header)))
    assert convert[1]("552") == 552
    assert convert[2]("") is None
    assert convert[2]("-1") == -1
    assert convert[5]("1.5") == 1.5
    assert convert[3]("1") is True
    assert convert[4]("false") is False
    assert 0 not in convert


def test_row_hash_is_content_and_type_sensitive() -> None:
    assert row_hash("Login", ["a", "b"]) == row_hash("Login", ["a", "b"])
    assert row_hash("Login", ["a", "b"]) != row_hash("Logout", ["a", "b"])
    assert row_hash("Login", ["a,b"]) != row_hash("Login", ["a", "b"])


async def test_documented_blob_sample_with_spaces_after_commas() -> None:
    examples = orjson.loads((SHARED_FIXTURES / "rest/compiled-rest-oauth-examples.json").read_bytes())
    sample = next(e for e in examples["examples"] if e["id"] == "elf_blob_response")
    data = "".join(line + "\n" for line in sample["body_lines"]).encode()
    rows = await parse(data, [33])
    assert rows[0][:3] == ["EVENT_TYPE", "ORGANIZATION_ID", "TIMESTAMP"]
    assert rows[1][:3] == ["URI", "00DD0000000K5xD", "20130728185606.020"]


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(
        st.one_of(  # well-formed quoted lines (often taken) or arbitrary text (mostly declined)
            st.lists(st.text(alphabet=st.sampled_from('a ,\r"'), max_size=4), min_size=1, max_size=4).map(
                lambda row: ",".join('"' + v.replace('"', '""') + '"' for v in row)
            ),
            st.text(alphabet=st.sampled_from('a ,"\r'), max_size=14),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_split_fast_path_parses_like_csv_reader_or_declines(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    rows = _quoted_rows(text)
    if rows is not None:
        assert rows == list(csv.reader(io.StringIO(text), skipinitialspace=True))


def test_split_fast_path_takes_plain_quoted_rows_and_declines_escaped_quotes() -> None:
    assert _quoted_rows('"a","",", b"\n"c","d","e"\n') == [["a", "", ", b"], ["c", "d", "e"]]
    assert _quoted_rows('"a","say ""hi""","c"\n') is None
    assert _quoted_rows('"a", "b"\n') is None  # space after the comma (facts A3): csv.reader's job
    assert _quoted_rows('"a","b"\r\n') is None


def test_row_typer_types_in_place_and_shares_one_header_tuple_across_files() -> None:
    typer = RowTyper(["EVENT_TYPE", "RUN_TIME", "OK"], "String,Number,Boolean")
    rows = [["Login", "12", "true"], ["Login", ""], ["Login", "1.5", "0", "extra"]]
    assert typer.payloads(rows) == [
        {"EVENT_TYPE": "Login", "RUN_TIME": 12, "OK": True},
        {"EVENT_TYPE": "Login", "RUN_TIME": None},
        {"EVENT_TYPE": "Login", "RUN_TIME": 1.5, "OK": False},
    ]
    assert typer.fields == ("EVENT_TYPE", "RUN_TIME", "OK")
    assert RowTyper(["EVENT_TYPE", "RUN_TIME", "OK"], "").fields is typer.fields
    assert RowTyper(["A", "B", "A"], "").fields is None  # a repeated name: payloads have fewer keys


def test_row_typer_generated_and_zipped_paths_agree_even_on_hostile_column_names() -> None:
    header = ["A", "it's \"q\"\\", "__import__('os')", "N", "A"]
    rows = [["1", "2", "3", "4", "5"], ["x"], ["1", "2", "3", "", "5"]]
    generated = RowTyper(header, "Number,String,String,Number,String")
    original = logfile._MAX_GENERATED_WIDTH
    logfile._MAX_GENERATED_WIDTH = 0
    try:
        zipped = RowTyper(header, "Number,String,String,Number,String")
    finally:
        logfile._MAX_GENERATED_WIDTH = original
    out = generated.payloads([list(r) for r in rows])
    assert out == zipped.payloads([list(r) for r in rows])
    assert [list(p) for p in out] == [list(p) for p in zipped.payloads([list(r) for r in rows])]
    assert out[0] == {"A": "5", header[1]: "2", header[2]: "3", "N": 4}
