"""Caller lookup and metrics decoding over a real seeded cache file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from client.cache_extras import caller, e164, metrics
from client.store_reader import StoreReader


@pytest.mark.parametrize(
    ("remote", "number"),
    [
        ('"Ana" <sip:+15551234567@pbx.example.com>', "+15551234567"),
        ("tel:+1 (555) 123-4567", "+15551234567"),
        ("sip:0032470123456@pbx;user=phone", "+32470123456"),
        ("15551234567", "+15551234567"),
        ('"Queue Support" <sip:queue@127.0.0.1:5060>', ""),
        ("sip:123@pbx", ""),  # an extension, not a number
    ],
)
def test_e164_of_what_a_pbx_sends(remote: str, number: str) -> None:
    assert e164(remote) == number


def test_caller_found_by_phone_identity_with_last_conversation(seeded: Path) -> None:
    reader = StoreReader(seeded)
    try:
        found = caller(reader, "<sip:+15550000000@pbx>")
        assert found is not None and found.name == "Maria Souza"
        assert found.last_conversation_id and found.last_preview
        assert caller(reader, "sip:+19999999999@pbx") is None
    finally:
        reader.close()


def test_metrics_split_own_figures_and_queues(seeded: Path) -> None:
    with sqlite3.connect(seeded) as db:
        db.executemany(
            "INSERT INTO metrics (key, value, updated_at) VALUES (?, ?, 0)",
            [("handled", "3"), ("queues", '{"support": {"depth": 2}}'), ("at", "5.0")],
        )
    reader = StoreReader(seeded)
    try:
        m = metrics(reader)
    finally:
        reader.close()
    assert m.own == {"handled": 3} and m.queues == {"support": {"depth": 2}} and m.at == 5.0
