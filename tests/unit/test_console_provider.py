"""The console provider: one JSON line per text in the outbox, the body on the console."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recovery.sms.base import OutboundCall, OutboundSms
from recovery.sms.console import ConsoleProvider, number_digest, outbox_key, read_outbox
from tests.conftest import PHI_KEY

KEY = outbox_key(PHI_KEY)


def sms(to: str = "+15125550199", body: str = "Valley Family Clinic: hello") -> OutboundSms:
    return OutboundSms(from_number="+15125550100", to_number=to, body=body)


def test_each_text_is_one_json_line_in_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "nested" / "outbox.jsonl"
    provider = ConsoleProvider(outbox, stream=io.StringIO(), key=KEY)

    first = provider.send(sms(to="+15125550199", body="first\nline two"))
    second = provider.send(sms(to="+15125550198", body="second"))

    lines = outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    records = read_outbox(outbox)
    assert [r["sid"] for r in records] == [first.provider_sid, second.provider_sid]
    assert records[0]["from"] == "+15125550100"
    assert records[0]["to"] == "+1********99"  # masked
    assert records[0]["to_digest"] == number_digest(KEY, "+15125550199")
    assert records[0]["body"] == "first\nline two"
    assert records[1]["body"] == "second"
    assert records[0]["at"].endswith("+00:00")


def test_the_body_is_printed_to_the_given_stream(tmp_path: Path) -> None:
    stream = io.StringIO()
    provider = ConsoleProvider(tmp_path / "outbox.jsonl", stream=stream, key=KEY)

    result = provider.send(sms(body="Valley Family Clinic: sorry we missed your call!"))

    printed = stream.getvalue()
    assert "Valley Family Clinic: sorry we missed your call!" in printed
    assert result.provider_sid in printed


def test_sids_are_unique_and_look_like_message_sids(tmp_path: Path) -> None:
    provider = ConsoleProvider(tmp_path / "outbox.jsonl", stream=io.StringIO(), key=KEY)

    sids = [provider.send(sms()).provider_sid for _ in range(50)]

    assert len(set(sids)) == 50
    assert all(sid.startswith("CM") and len(sid) == 34 for sid in sids)


def test_reading_a_missing_outbox_gives_no_texts(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "never-written.jsonl") == []


def test_the_provider_is_named_console(tmp_path: Path) -> None:
    assert ConsoleProvider(tmp_path / "outbox.jsonl", key=KEY).name == "console"


def test_it_answers_what_it_sent_to_a_number_since_a_moment(tmp_path: Path) -> None:
    provider = ConsoleProvider(tmp_path / "outbox.jsonl", stream=io.StringIO(), key=KEY)
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = provider.send(sms(body="one"))
    provider.send(sms(to="+15125550198", body="elsewhere"))
    second = provider.send(sms(body="two"))

    found = provider.find_sent("+15125550100", "+15125550199", before)
    assert [(t.provider_sid, t.body) for t in found] == [
        (second.provider_sid, "two"),
        (first.provider_sid, "one"),
    ]
    assert provider.find_sent("+15125550100", "+15125550199", datetime.now(UTC)) == []


def test_no_recipient_number_is_in_the_file_or_on_the_terminal(tmp_path: Path) -> None:
    """The outbox and the terminal once held every patient's full number."""
    outbox = tmp_path / "outbox.jsonl"
    stream = io.StringIO()
    provider = ConsoleProvider(outbox, stream=stream, key=KEY)

    provider.send(sms(to="+15125550199", body="Valley Family Clinic: hello"))

    assert "5125550199" not in outbox.read_text(encoding="utf-8")
    assert "5125550199" not in stream.getvalue()
    # Another key (another install) does not recognise the number.
    other = ConsoleProvider(outbox, stream=io.StringIO(), key=outbox_key("another key"))
    assert other.find_sent("+15125550100", "+15125550199", datetime(2000, 1, 1, tzinfo=UTC)) == []


def test_a_voice_page_call_is_recorded_like_a_text_with_kind_call(tmp_path: Path) -> None:
    stream = io.StringIO()
    provider = ConsoleProvider(tmp_path / "outbox.jsonl", stream=stream, key=KEY)
    before = datetime.now(UTC) - timedelta(seconds=1)
    words = "This is Valley Family Clinic with an urgent page. Press 1 to take it."
    text = provider.send(sms(to="+15125550111", body="a page text"))

    placed = provider.call(
        OutboundCall("+15125550100", "+15125550111", "https://x.example/twiml", words)
    )

    [_, record] = read_outbox(tmp_path / "outbox.jsonl")
    assert record["kind"] == "call" and record["body"] == words
    assert record["sid"] == placed.provider_sid and placed.provider_sid.startswith("CA")
    assert f"CALL {placed.provider_sid}" in stream.getvalue() and words in stream.getvalue()
    # Texts and calls are asked for separately: a call is never taken for a text.
    [call] = provider.find_calls("+15125550100", "+15125550111", before)
    assert call.provider_sid == placed.provider_sid
    assert [t.provider_sid for t in provider.find_sent("+15125550100", "+15125550111", before)] == [
        text.provider_sid
    ]
    assert provider.find_calls("+15125550100", "+15125550112", before) == []
    assert "5125550111" not in (tmp_path / "outbox.jsonl").read_text(encoding="utf-8")
