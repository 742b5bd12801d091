"""The shared HTTP-sink helpers (sinks/_http.py): Retry-After parsing, the generic status table, gzip, TLS."""

from __future__ import annotations

import gzip
import os
import ssl
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forwarder.errors import ConfigError
from forwarder.settings import TlsConfig
from sinks._http import (
    _THREAD_GZIP_BYTES,
    RETRY_AFTER_CAP,
    Outcome,
    gzip_body,
    gzip_off_loop,
    http_outcome,
    parse_retry_after,
)

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("3600", RETRY_AFTER_CAP),  # capped: a hostile or broken peer cannot park a sink for an hour
        ("Thu, 26 Nov 2026 07:00:30 GMT", 30.0),  # RFC 9110 HTTP-date
        ("Thu, 26 Nov 2026 06:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (202, Outcome.OK),
        (400, Outcome.PERMANENT),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (404, Outcome.PERMANENT),
        (408, Outcome.RETRY),
        (413, Outcome.TOO_LARGE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (501, Outcome.PERMANENT),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
    ],
)
def test_generic_status_table(status: int, outcome: Outcome) -> None:
    assert http_outcome(status) is outcome


def test_gzip_body_is_standard_gzip() -> None:
    body = b'{"event":"a"}\n{"event":"b"}' * 100
    compressed = gzip_body(body)
    assert compressed[:2] == b"\x1f\x8b"
    assert zlib.decompress(compressed, 47) == body


async def test_large_bodies_are_compressed_off_the_loop_into_the_same_standard_gzip() -> None:
    body = b"".join(
        b'{"event":"%d","pad":"%s"}\n' % (i, os.urandom(8).hex().encode()) for i in range(300_000)
    )
    assert len(body) > _THREAD_GZIP_BYTES
    compressed = await gzip_off_loop(body)
    assert gzip.decompress(compressed) == body


def test_tls_verifies_by_default_and_can_be_turned_off() -> None:
    context = TlsConfig().client_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    unverified = TlsConfig(verify=False).client_context()
    assert unverified.verify_mode is ssl.CERT_NONE
    assert not unverified.check_hostname


def test_unreadable_certificate_is_a_config_error_naming_where(tmp_path: Path) -> None:
    tls = TlsConfig(cert_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"sinks\.splunk: tls: cannot load certificates"):
        tls.client_context("sinks.splunk")
