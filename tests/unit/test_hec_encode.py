"""HEC envelopes and the HEC reply-code table, as pure functions."""

from __future__ import annotations

from datetime import UTC

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.hec import check_envelope, split_envelopes
from sinks._http import Outcome
from sinks.splunk_hec import (
    EnvelopeEncoder,
    SplunkHecConfig,
    SplunkHecSink,
    envelope,
    epoch_seconds,
    hec_outcome,
)


def _config(**kw: object) -> SplunkHecConfig:
    return SplunkHecConfig.model_validate(
        {"type": "splunk_hec", "name": "hec", "url": "https://splunk:8088", "token": "t", **kw}
    )


def test_time_is_epoch_seconds_with_milliseconds() -> None:
    assert epoch_seconds("2026-11-26T06:00:00.123456+00:00") == 1795672800.123
    assert epoch_seconds("2026-11-26T06:00:00Z") == 1795672800.0


def test_time_is_left_out_when_the_timestamp_is_missing_or_naive() -> None:
    doc = sample_event(1)
    del doc["@timestamp"]
    assert "time" not in envelope(_config(), doc)
    assert epoch_seconds("2026-11-26T06:00:00") is None


def test_envelope_carries_metadata_and_flat_indexed_fields() -> None:
    config = _config(index="salesforce", host="fwd-1", fields={"tenant": "acme"})
    out = envelope(config, sample_event(7))
    assert out["index"] == "salesforce"
    assert out["host"] == "fwd-1"
    assert out["source"] == "sf-forwarder"
    assert out["sourcetype"] == "salesforce:login"
    assert out["event"] == sample_event(7)
    assert out["fields"] == {
        "tenant": "acme",
        "event_id": "evt-00000007",
        "org_id": "00D5j000000XXXXEAA",
        "dataset": "salesforce.login",
        "event_kind": "event",
    }


def test_sourcetype_mapping_overrides_the_template() -> None:
    config = _config(sourcetype="sfdc:{dataset}", sourcetypes={"salesforce.login": "sfdc:auth"})
    assert envelope(config, sample_event(1))["sourcetype"] == "sfdc:auth"
    other = sample_event(1)
    other["event"]["dataset"] = "salesforce.setup_audit"
    assert envelope(config, other)["sourcetype"] == "sfdc:setup_audit"


def test_index_is_omitted_unless_configured() -> None:
    assert "index" not in envelope(_config(), sample_event(1))


@given(
    event_id=st.text(min_size=1, max_size=40),
    dataset=st.text(max_size=30),
    org=st.one_of(st.none(), st.text(max_size=20), st.integers(min_value=0, max_value=2**63 - 1)),
    message=st.text(max_size=200),
)
def test_every_envelope_passes_the_hec_checks(event_id: str, dataset: str, org: object, message: str) -> None:
    doc = sample_event(1)
    doc["event"]["id"], doc["event"]["dataset"], doc["message"] = event_id, dataset, message
    doc["organization"] = {"id": org}
    sink = SplunkHecSink(_config())
    encoded = sink.encode(doc)
    (parsed,) = split_envelopes(encoded)
    assert check_envelope(parsed, None) is None
    assert all(isinstance(v, str) for v in parsed["fields"].values())
    assert parsed["event"] == orjson.loads(orjson.dumps(doc))


def test_concatenated_envelopes_split_even_without_newlines() -> None:
    assert split_envelopes(b'{"event":"a"}{"event":"b"} \n{"event":"c"}') == [
        {"event": "a"},
        {"event": "b"},
        {"event": "c"},
    ]


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (200, 0, Outcome.OK),
        (403, 1, Outcome.AUTH),  # token disabled: pause, never drop
        (401, 2, Outcome.AUTH),
        (401, 3, Outcome.AUTH),
        (403, 4, Outcome.AUTH),
        (400, 5, Outcome.PERMANENT),
        (400, 6, Outcome.PERMANENT),
        (400, 7, Outcome.PERMANENT),
        (500, 8, Outcome.RETRY),
        (503, 9, Outcome.RETRY),
        (400, 10, Outcome.RETRY),  # channel missing: resend with a channel
        (400, 11, Outcome.RETRY),  # invalid channel: resend on a new one
        (400, 12, Outcome.PERMANENT),
        (400, 13, Outcome.PERMANENT),
        (400, 15, Outcome.PERMANENT),
        (400, 16, Outcome.PERMANENT),
        (413, None, Outcome.TOO_LARGE),
        (429, None, Outcome.RETRY),
        (502, None, Outcome.RETRY),
        (501, None, Outcome.PERMANENT),  # not implemented never gets better (Vector retry.rs)
    ],
)
def test_reply_code_table(status: int, code: int | None, outcome: Outcome) -> None:
    assert hec_outcome(status, code) is outcome


def test_token_never_appears_in_the_config_repr() -> None:
    config = _config(token=SecretStr("super-secret-token"))
    assert "super-secret-token" not in repr(config)
    assert "super-secret-token" not in str(config.model_dump())


def test_token_file_variant_is_read(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "token"
    path.write_text("from-file\n")
    config = SplunkHecConfig.model_validate(
        {"type": "splunk_hec", "name": "h", "url": "https://s:8088", "token_file": str(path)}
    )
    assert config.token.get_secret_value() == "from-file"


def test_limits_stay_under_a_mebibyte_and_a_thousand_events() -> None:
    limits = SplunkHecSink(_config()).limits
    assert limits.max_events == 1000
    assert limits.max_bytes + limits.max_events - 1 <= 1_048_576  # with the newlines between envelopes


def test_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        _config(url="splunk.example:8088")


@given(
    dataset=st.one_of(st.none(), st.text(max_size=20)),
    kind=st.one_of(st.none(), st.sampled_from(["event", "alert"])),
    org=st.one_of(st.none(), st.text(max_size=20)),
    event_id=st.one_of(st.text(max_size=20), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    timestamp=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())),
    extra_fields=st.dictionaries(st.sampled_from(["tenant", "event_id", "env"]), st.text(max_size=5)),
)
def test_fast_encoder_writes_the_reference_envelope(
    dataset: str | None,
    kind: str | None,
    org: str | None,
    event_id: object,
    timestamp: str | None,
    extra_fields: dict[str, str],
) -> None:
    doc = sample_event(1)
    doc["event"].update(dataset=dataset, kind=kind, id=event_id)
    doc["organization"] = {"id": org} if org is not None else None
    doc["@timestamp"] = timestamp
    config = _config(fields=extra_fields)
    encoder = EnvelopeEncoder(config)
    for _ in range(2):  # second time from the cache
        assert orjson.loads(encoder(doc)) == orjson.loads(orjson.dumps(envelope(config, doc)))


def test_odd_documents_take_the_reference_path() -> None:
    config = _config()
    encoder = EnvelopeEncoder(config)
    for odd in ({"dataset": ["a", "b"]}, {"kind": {"x": 1}}, {"id": 17}):
        doc = sample_event(1)
        doc["event"].update(odd)
        assert orjson.loads(encoder(doc)) == orjson.loads(orjson.dumps(envelope(config, doc)))
